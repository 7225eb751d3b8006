"""First-run setup, signing in and out, and the lockout after 5 wrong passwords, in a real browser."""

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, DESKTOP, ORGANIZATION, button, overflow, set_up_organization, sign_in

pytestmark = pytest.mark.browser


def test_first_run_setup_creates_the_organization_and_signs_the_admin_in(
    app: AppProcess,
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(app).new_page()
    page.goto('/')
    expect(page).to_have_url(f'{app.url}/setup')
    expect(page.get_by_text('Set up CX Toolbox')).to_be_visible()
    expect(page.get_by_text('At least 10 characters')).to_be_visible()
    for width in (390, 1440):  # fits a phone and a wide screen without sideways scrolling
        page.set_viewport_size({'width': width, 'height': 844})
        assert overflow(page) is None
    page.set_viewport_size(DESKTOP)

    set_up_organization(page, ADMIN, ORGANIZATION)

    expect(page).to_have_url(f'{app.url}/')
    expect(page.get_by_role('banner').get_by_text(ORGANIZATION)).to_be_visible()
    expect(page.get_by_role('tab', name='Dashboard Settings')).to_be_visible()
    expect(page.get_by_role('tab', name='User Management')).to_be_visible()
    expect(page.get_by_role('tab', name='Activity')).to_be_visible()
    # Setup is open only once: afterwards it sends people to sign in.
    other = new_context(app).new_page()
    other.goto('/setup')
    expect(other).to_have_url(f'{app.url}/login')
    expect(button(other, 'Sign in')).to_be_visible()


def test_sign_in_returns_to_the_page_asked_for_and_sign_out_ends_the_session(admin_app: AppProcess, page: Page) -> None:
    page.goto('/help/sidekick')
    expect(page).to_have_url(f'{admin_app.url}/login?redirect_to=/help/sidekick')
    page.get_by_label('Email').fill(ADMIN.email)
    page.get_by_label('Password').fill('not the password')
    button(page, 'Sign in').click()
    expect(page.get_by_label('Password')).to_have_value('')
    expect(page.get_by_text('Invalid email or password')).to_be_visible()

    page.get_by_label('Password').fill(ADMIN.password)
    page.get_by_label('Password').press('Enter')
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()
    expect(page).to_have_url(f'{admin_app.url}/help/sidekick')
    expect(page.get_by_text('Sidekick runs inside Kustomer')).to_be_visible()

    button(page, 'Sign out').click()
    expect(page).to_have_url(f'{admin_app.url}/login')
    page.goto('/')
    expect(page).to_have_url(f'{admin_app.url}/login?redirect_to=/')
    expect(page.get_by_text('Signed in as')).to_have_count(0)


def test_signing_in_twice_in_one_browser_keeps_one_session(admin_app: AppProcess, page: Page) -> None:
    sign_in(page)
    page.goto('/login')
    expect(page).to_have_url(f'{admin_app.url}/')  # already signed in: straight to the dashboard


# Keep this test last in the module: it locks the admin's email on this module's app for 15 minutes.
def test_five_wrong_passwords_lock_the_email_for_15_minutes(
    admin_app: AppProcess,
    page: Page,
    new_context: Callable[..., BrowserContext],
) -> None:
    app, locked = admin_app, ADMIN
    page.goto('/login')
    page.get_by_label('Email').fill(locked.email)
    for attempt in range(1, 6):
        page.get_by_label('Password').fill(f'wrong password {attempt}')
        button(page, 'Sign in').click()
        # The field was filled: once it is empty again the server has answered this attempt.
        expect(page.get_by_label('Password')).to_have_value('')
        expect(page.get_by_text('Invalid email or password')).to_be_visible()

    page.get_by_label('Password').fill(locked.password)  # even the right password is refused now
    button(page, 'Sign in').click()
    expect(page.get_by_text('Too many failed attempts. Try again in 15 minutes.')).to_be_visible()
    expect(page).to_have_url(f'{app.url}/login')
    expect(page.get_by_text('Signed in as')).to_have_count(0)

    # Another email is not affected.
    other = new_context(app).new_page()
    other.goto('/login')
    other.get_by_label('Email').fill('someone.else@example.com')
    other.get_by_label('Password').fill('whatever password')
    button(other, 'Sign in').click()
    expect(other.get_by_text('Invalid email or password')).to_be_visible()
