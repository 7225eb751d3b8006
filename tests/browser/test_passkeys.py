"""Passkeys in real Chromium with its virtual authenticator (a platform authenticator that verifies the user):
add one on the Security page, sign out, sign in with it, remove it, and a removed passkey signs in no more.

Passkeys need a domain name as relying party id (an IP address is refused by the browser), so this module's app is
reached at http://localhost:<port>, which is also its CXT_PUBLIC_URL.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Locator, Page, expect

from services.identity.passkeys import NOT_SIGNED_IN
from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, DESKTOP, ORGANIZATION, REPO_ROOT, button, close_settled


@pytest.fixture(scope='module')
def localhost_app(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    app = AppProcess(REPO_ROOT, Path(tmp_path_factory.mktemp('passkeys')))
    app.url = f'http://localhost:{app.port}'
    app.extra_env['CXT_PUBLIC_URL'] = app.url
    app.start()
    context = browser.new_context(base_url=app.url, viewport=DESKTOP)
    _set_up(context.new_page())
    context.close()
    yield app
    app.stop()


@pytest.fixture
def context(browser: Browser, localhost_app: AppProcess) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=localhost_app.url, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    yield context
    close_settled(context)


def _virtual_authenticator(context: BrowserContext, page: Page) -> tuple[CDPSession, str]:
    cdp = context.new_cdp_session(page)
    cdp.send('WebAuthn.enable')
    added: dict[str, Any] = cdp.send(
        'WebAuthn.addVirtualAuthenticator',
        {
            'options': {
                'protocol': 'ctap2',
                'transport': 'internal',
                'hasResidentKey': True,
                'hasUserVerification': True,
                'isUserVerified': True,
            }
        },
    )
    return cdp, added['authenticatorId']


def _field(page: Page, name: str) -> Locator:
    return page.get_by_role('textbox', name=name, exact=True)


def _set_up(page: Page) -> None:
    page.goto('/setup')
    _field(page, 'Organization name').fill(ORGANIZATION)
    _field(page, 'Your name').fill(ADMIN.name)
    _field(page, 'Email').fill(ADMIN.email)
    _field(page, 'Password').fill(ADMIN.password)
    button(page, 'Create organization').click()
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible(timeout=15_000)


def _sign_in_with_password(page: Page) -> None:
    page.goto('/login')
    _field(page, 'Email').fill(ADMIN.email)
    _field(page, 'Password').fill(ADMIN.password)
    button(page, 'Sign in').click()
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible(timeout=15_000)


def test_add_a_passkey_sign_in_with_it_remove_it(context: BrowserContext) -> None:
    page = context.new_page()
    cdp, authenticator = _virtual_authenticator(context, page)
    _sign_in_with_password(page)

    page.goto('/security')
    expect(page.get_by_role('heading', name='Passkeys', level=2)).to_be_visible()
    expect(page.get_by_text('No passkeys yet.')).to_be_visible()
    button(page, 'Add a passkey').click()  # the password was just entered: no confirmation asked
    _field(page, 'Passkey name').fill('Work laptop')
    button(page, 'Create passkey').click()
    expect(page.get_by_text('Passkey “Work laptop” added')).to_be_visible()
    expect(page.get_by_text('Work laptop', exact=True)).to_be_visible()
    expect(page.get_by_text('last used never')).to_be_visible()
    credentials = cdp.send('WebAuthn.getCredentials', {'authenticatorId': authenticator})['credentials']
    assert len(credentials) == 1 and credentials[0]['isResidentCredential'] and credentials[0]['rpId'] == 'localhost'

    button(page.get_by_role('banner'), 'Sign out').click()
    expect(page).to_have_url(re.compile(r'/login$'))
    expect(button(page, 'Sign in with a passkey')).to_be_visible()
    button(page, 'Sign in with a passkey').click()  # no email typed: the passkey names the account
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible(timeout=15_000)
    expect(page).to_have_url(re.compile(r'^http://localhost:\d+/$'))  # the dashboard

    page.goto('/security')
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()
    expect(page.get_by_text('last used never')).to_have_count(0)  # it was just used
    page.get_by_role('button', name='Remove passkey Work laptop').click()  # signing in with it counts as recent
    expect(page.get_by_text('Passkey “Work laptop” removed')).to_be_visible()
    expect(page.get_by_text('No passkeys yet.')).to_be_visible()

    button(page.get_by_role('banner'), 'Sign out').click()
    expect(button(page, 'Sign in with a passkey')).to_be_visible()
    button(page, 'Sign in with a passkey').click()  # the authenticator still holds it; the dashboard does not
    alert = page.get_by_role('alert').filter(has_text=NOT_SIGNED_IN)
    expect(alert).to_be_visible()
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_have_count(0)


def test_a_browser_without_passkeys_is_told_so(context: BrowserContext) -> None:
    context.add_init_script('delete window.PublicKeyCredential;')
    page = context.new_page()
    page.goto('/login')
    button(page, 'Sign in with a passkey').click()
    expect(page.get_by_role('alert').filter(has_text='This browser cannot use passkeys here')).to_be_visible()


def test_a_cancelled_passkey_prompt_is_told_and_nothing_changes(context: BrowserContext) -> None:
    page = context.new_page()
    cdp, authenticator = _virtual_authenticator(context, page)
    cdp.send('WebAuthn.setUserVerified', {'authenticatorId': authenticator, 'isUserVerified': False})
    _sign_in_with_password(page)
    page.goto('/security')
    button(page, 'Add a passkey').click()
    button(page, 'Create passkey').click()
    expect(page.get_by_role('alert').filter(has_text='No passkey was added')).to_be_visible(timeout=20_000)
    expect(page.get_by_text('No passkeys yet.')).to_be_visible()


def test_a_password_sign_in_of_an_account_with_a_passkey_asks_for_it(context: BrowserContext) -> None:
    """The password alone does not sign in an account whose second factor is a passkey: the second step offers
    `Use a passkey` (only that account's), and the passkey finishes the sign-in (a complete one: removing the passkey
    asks for no password)."""
    page = context.new_page()
    cdp, authenticator = _virtual_authenticator(context, page)
    _sign_in_with_password(page)
    page.goto('/security')
    button(page, 'Add a passkey').click()
    _field(page, 'Passkey name').fill('Second step key')
    button(page, 'Create passkey').click()
    expect(page.get_by_text('Passkey “Second step key” added')).to_be_visible()
    button(page.get_by_role('banner'), 'Sign out').click()
    expect(page).to_have_url(re.compile(r'/login$'))

    _field(page, 'Email').fill(ADMIN.email)
    _field(page, 'Password').fill(ADMIN.password)
    button(page, 'Sign in').click()
    expect(button(page, 'Use a passkey')).to_be_visible(timeout=15_000)
    expect(page).to_have_url(re.compile(r'/login/code'))
    expect(page.get_by_text(f'Signing in as {ADMIN.email}')).to_be_visible()
    expect(page.get_by_role('textbox', name='Authentication code')).to_have_count(0)  # no authenticator app
    page.goto('/')  # the password alone opened nothing
    expect(page).to_have_url(re.compile(r'/login'))
    page.go_back()
    expect(button(page, 'Use a passkey')).to_be_visible()
    button(page, 'Use a passkey').click()
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible(timeout=15_000)

    page.goto('/security')
    page.get_by_role('button', name='Remove passkey Second step key').click()
    expect(page.get_by_text('Passkey “Second step key” removed')).to_be_visible()
    expect(page.get_by_text('No passkeys yet.')).to_be_visible()
    assert cdp.send('WebAuthn.getCredentials', {'authenticatorId': authenticator})['credentials']
