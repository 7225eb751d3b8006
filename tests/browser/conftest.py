"""Real-browser fixtures: the app as its own process, Debian's Chromium through Playwright, screenshots on failure.

Module-scoped Playwright on purpose: a session-scoped sync Playwright keeps an event loop running and breaks the
`user`-fixture tests that run after this folder.
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, ARTIFACTS, DESKTOP, REPO_ROOT, set_up_organization

CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_ARGS = [
    '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run',
]
# CI machines are shared and small: what a person would call slow is still well under these limits.
expect.set_options(timeout=10_000)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell at teardown whether the test failed."""
    report = yield
    setattr(item, f'report_{report.when}', report)
    return report


def _failed(node: pytest.Item) -> bool:
    return any(getattr(node, f'report_{when}', None) is not None and getattr(node, f'report_{when}').failed
               for when in ('setup', 'call'))


@pytest.fixture(scope='module')
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f'no Chromium at {CHROMIUM}: install the `chromium` package (.ci/run does) to run browser tests')
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope='module')
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope='module')
def app_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., AppProcess]]:
    """Start fresh app processes (empty database) for this module; all are stopped when the module ends."""
    started: list[AppProcess] = []

    def start(**env: str) -> AppProcess:
        app = AppProcess(REPO_ROOT, tmp_path_factory.mktemp('app'), env=env)
        started.append(app)
        app.start()
        return app

    yield start
    for app in started:
        app.stop()


@pytest.fixture(scope='module')
def app(app_factory: Callable[..., AppProcess]) -> AppProcess:
    """A fresh app for this module with nobody set up yet."""
    return app_factory()


@pytest.fixture(scope='module')
def admin_app(app: AppProcess, browser: Browser) -> AppProcess:
    """The module's app with its organization and first admin (`helpers.ADMIN`) created through the setup page.

    Set up on first use, so a module may test the setup page itself first and any test still runs on its own.
    """
    if httpx.get(f'{app.url}/setup', follow_redirects=False).status_code == 200:
        context = browser.new_context(base_url=app.url, viewport=DESKTOP)
        set_up_organization(context.new_page(), ADMIN)
        context.close()
    return app


@pytest.fixture
def new_context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., BrowserContext]]:
    """Open browser contexts (separate cookie jars, like separate people); on failure every page is photographed."""
    contexts: list[BrowserContext] = []

    def open_context(app: AppProcess, **options: object) -> BrowserContext:
        options.setdefault('viewport', DESKTOP)
        context = browser.new_context(base_url=app.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield open_context
    if _failed(request.node):
        _save_screenshots(request.node, [page for context in contexts for page in context.pages])
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext], admin_app: AppProcess) -> Page:
    """A desktop page in its own context on the module's set-up app (nobody signed in yet)."""
    return new_context(admin_app).new_page()


def _save_screenshots(node: pytest.Item, pages: list[Page]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r'[^A-Za-z0-9_.-]+', '_', node.nodeid.split('/')[-1])
    for index, page in enumerate(pages):
        path = ARTIFACTS / f'{stem}-{index}.png'
        try:
            page.screenshot(path=str(path), full_page=True, timeout=5_000)
        except Exception as error:  # a crashed or closed page must not hide the test's own failure
            print(f'screenshot of {page.url} failed: {error}')
        else:
            print(f'screenshot: {path} ({page.url})')
