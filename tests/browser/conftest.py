"""Real-browser fixtures: the app as its own process, Debian's Chromium through Playwright, screenshots on failure.

Module-scoped Playwright on purpose: a session-scoped sync Playwright keeps an event loop running and breaks the
`user`-fixture tests that run after this folder.
"""

import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, expect, sync_playwright

from tests.browser.app_process import AppProcess
from tests.browser.helpers import (
    ADMIN,
    ARTIFACTS,
    DESKTOP,
    REPO_ROOT,
    STRIPE_PRICE_ID,
    close_settled,
    set_up_organization,
)
from tests.smtp_server import SmtpServer
from tests.stripe_server import StripeServer

CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_ARGS = [
    '--no-sandbox',
    '--headless',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
]
# CI machines are shared and small: what a person would call slow is still well under these limits.
expect.set_options(timeout=10_000)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell at teardown whether the test failed."""
    report = yield
    setattr(item, f'report_{report.when}', report)
    return report


def _failed(node: pytest.Item) -> bool:
    return any(
        getattr(node, f'report_{when}', None) is not None and getattr(node, f'report_{when}').failed
        for when in ('setup', 'call')
    )


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


class AppPool:
    """Fresh apps, each booted in the background while the module before it runs (start-up is the slow part).

    Every app gets the same environment: the session's SMTP server and Stripe test server.
    """

    def __init__(self, make: Callable[[], AppProcess], wanted: int) -> None:
        self._make = make
        self._remaining = wanted
        self._spare: AppProcess | None = None
        self._all: list[AppProcess] = []

    def take(self) -> AppProcess:
        app = self._spare or self._spawn()
        self._spare = None
        self._remaining -= 1
        if self._remaining > 0:
            self._spare = self._spawn()
        return app.wait_ready()

    def _spawn(self) -> AppProcess:
        app = self._make().spawn()
        self._all.append(app)
        return app

    def stop_all(self) -> None:
        for app in self._all:
            app.stop()


@pytest.fixture(scope='session')
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) every app mails through; tests read what arrived."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def stripe() -> Iterator[StripeServer]:
    """The tests' Stripe-compatible server every app talks to; its pages deliver webhooks to `webhook_url`."""
    with StripeServer() as server:
        yield server


@pytest.fixture(scope='session')
def app_pool(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: SmtpServer,
    stripe: StripeServer,
    request: pytest.FixtureRequest,
) -> Iterator[AppPool]:
    env = {
        'CXT_SMTP_HOST': smtp.host,
        'CXT_SMTP_PORT': str(smtp.port),
        'CXT_SMTP_SECURITY': 'none',
        'CXT_MAIL_FROM': 'dashboard@example.com',
        'CXT_STRIPE_SECRET_KEY': 'sk_test_x',
        'CXT_STRIPE_PRICE_ID': STRIPE_PRICE_ID,
        'CXT_STRIPE_API_BASE': stripe.url,
        'CXT_STRIPE_WEBHOOK_SECRET': stripe.webhook_secret,
    }
    here = Path(__file__).parent
    # Modules that bring their own app (single sign-on's, configured for the test provider) take none from the pool.
    modules = {
        item.path
        for item in request.session.items
        if here in item.path.parents and 'app' in getattr(item, 'fixturenames', ())
    }
    pool = AppPool(lambda: AppProcess(REPO_ROOT, tmp_path_factory.mktemp('app'), env=env), wanted=len(modules))
    yield pool
    pool.stop_all()


@pytest.fixture(scope='module')
def app(app_pool: AppPool) -> Iterator[AppProcess]:
    """A fresh app for this module (empty database: nobody set up yet)."""
    if not CHROMIUM.exists():
        pytest.skip(f'no Chromium at {CHROMIUM}: install the `chromium` package (.ci/run does) to run browser tests')
    app = app_pool.take()
    yield app
    app.stop()


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

    def open_context(
        app: AppProcess,
        *,
        viewport: ViewportSize = DESKTOP,
        is_mobile: bool | None = None,
        has_touch: bool | None = None,
        device_scale_factor: float | None = None,
        permissions: list[str] | None = None,
        timezone_id: str | None = None,
    ) -> BrowserContext:
        context = browser.new_context(
            base_url=app.url,
            viewport=viewport,
            is_mobile=is_mobile,
            has_touch=has_touch,
            device_scale_factor=device_scale_factor,
            permissions=permissions,
            timezone_id=timezone_id,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield open_context
    if _failed(request.node):
        _save_screenshots(request.node, [page for context in contexts for page in context.pages])
    for context in contexts:
        close_settled(context)


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
