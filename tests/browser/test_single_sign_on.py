"""Single sign-on in Chromium: `Sign in with …` on `/login`, the real provider's own login page, and back on `/` signed
in; a stranger is told why on `/login`."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, DESKTOP, REPO_ROOT, close_settled, set_up_organization
from tests.oidc_provider import OidcProvider

NAME = 'Acme ID'
BOOT_TIMEOUT = 180.0


def _answers(app: AppProcess) -> bool:
    try:
        return httpx.get(f'{app.url}/api/health', timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope='module')
def sso_app(oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app as its own process, configured for the test provider."""
    workdir: Path = tmp_path_factory.mktemp('sso-app')
    app = AppProcess(REPO_ROOT, workdir, env=oidc_provider.environment(CXT_OIDC_NAME=NAME)).spawn()
    deadline = time.monotonic() + BOOT_TIMEOUT  # a busy machine boots it slowly; wait_ready then answers at once
    while time.monotonic() < deadline and not _answers(app):
        time.sleep(0.2)
    app.wait_ready()
    yield app
    app.stop()


@pytest.fixture
def context(browser: Browser, sso_app: AppProcess) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=sso_app.url, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    context.route('**/fonts.googleapis.com/**', lambda route: route.abort())  # the provider's page asks the internet
    yield context
    close_settled(context)


def at_the_provider(page: Page, login: str) -> None:
    """The provider's own login page (oidc-provider's devInteractions): any password is right."""
    expect(page.locator('input[name=login]')).to_be_visible()
    page.locator('input[name=login]').fill(login)
    page.locator('input[name=password]').fill('any password')
    page.get_by_role('button', name='Sign-in').click()


def signed_out_page(context: BrowserContext, app: AppProcess) -> Page:
    """`/login` in a browser nobody is signed in with (the organization is set up first, once)."""
    page = context.new_page()
    if httpx.get(f'{app.url}/setup', follow_redirects=False).status_code == 200:
        set_up_organization(page, ADMIN)
        page.get_by_role('button', name='Sign out').click()
        expect(page.get_by_role('button', name='Sign in', exact=True)).to_be_visible()
    page.goto('/login')
    return page


def test_signing_in_through_the_providers_own_login_page(
    context: BrowserContext, sso_app: AppProcess, oidc_provider: OidcProvider
) -> None:
    page = signed_out_page(context, sso_app)
    page.get_by_role('button', name=f'Sign in with {NAME}').click()
    page.wait_for_url(f'{oidc_provider.issuer}/**')
    at_the_provider(page, ADMIN.email)
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible(timeout=15_000)
    assert page.url.rstrip('/') == sso_app.url


def test_a_stranger_is_told_why_on_the_login_page(
    context: BrowserContext, sso_app: AppProcess, oidc_provider: OidcProvider
) -> None:
    page = signed_out_page(context, sso_app)
    page.get_by_role('button', name=f'Sign in with {NAME}').click()
    page.wait_for_url(f'{oidc_provider.issuer}/**')
    at_the_provider(page, 'stranger@elsewhere.example')
    expect(page.get_by_role('alert').filter(has_text='No account for stranger@elsewhere.example')).to_have_text(
        'No account for stranger@elsewhere.example. Ask an admin to invite you.'
    )
