"""A console admins trust (issue 24): the tab in the address, one clock, sessions named like browsers, sign-out
everywhere confirmed, the organization's rules on their own page, our own 404 page, and small things a new admin trips
over. The server restart under an open page is in test_server_restart.py."""

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from pyotp.totp import TOTP

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, KEY, PHONE, api_key_field, button, set_up_organization, sign_in

pytestmark = pytest.mark.browser

SECRET_TEXT = re.compile(r'^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$')
ISO_TIME = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d')


def test_the_setup_form_marks_every_invalid_field_at_once(app: AppProcess, page_factory: Callable[[], Page]) -> None:
    """Runs first in this module: the organization does not exist yet."""
    page = page_factory()
    page.goto('/setup')
    page.get_by_label('Email').fill('not an address')
    page.get_by_label('Password').fill('short')
    button(page, 'Create organization').click()
    for field in ('Organization name', 'Your name', 'Email', 'Password'):
        expect(page.get_by_role('textbox', name=field)).to_have_attribute('aria-invalid', 'true')
    expect(page.get_by_text('Enter the organization name')).to_be_visible()
    expect(page.get_by_text('Enter your name')).to_be_visible()
    expect(page.get_by_text('Use at least 10 characters')).to_be_visible()
    expect(page.get_by_role('textbox', name='Organization name')).to_be_focused()  # the first one, to start over
    set_up_organization(page)


@pytest.fixture
def page_factory(new_context: Callable[..., BrowserContext], app: AppProcess) -> Callable[[], Page]:
    return lambda: new_context(app).new_page()


def test_the_open_tab_is_in_the_address_and_reload_and_back_keep_it(admin_app: AppProcess, page: Page) -> None:
    sign_in(page)
    page.get_by_role('tab', name='User Management').click()
    expect(page).to_have_url(re.compile(r'/\?tab=team$'))
    expect(page.get_by_text('Team Members')).to_be_visible()
    page.get_by_role('tab', name='Activity').click()
    expect(page).to_have_url(re.compile(r'/\?tab=activity$'))

    page.go_back()
    expect(page).to_have_url(re.compile(r'/\?tab=team$'))
    expect(page.get_by_role('tab', name='User Management')).to_have_attribute('aria-selected', 'true')
    page.reload()
    expect(page.get_by_role('tab', name='User Management')).to_have_attribute('aria-selected', 'true')
    expect(page.get_by_text('Team Members')).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r'/$'))  # where signing in landed: Dashboard Settings
    expect(page.get_by_role('tab', name='Dashboard Settings')).to_have_attribute('aria-selected', 'true')
    page.go_forward()
    expect(page.get_by_role('tab', name='User Management')).to_have_attribute('aria-selected', 'true')

    page.goto('/?tab=activity')  # a bookmark
    expect(page.get_by_role('tab', name='Activity')).to_have_attribute('aria-selected', 'true')
    expect(page.get_by_text('Times in')).to_be_visible()


def test_times_are_in_the_readers_zone_relative_with_the_exact_time_on_hover_and_focus(
    admin_app: AppProcess, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(admin_app, timezone_id='Asia/Kolkata').new_page()  # UTC+5:30 all year: `IST`
    sign_in(page)
    expect(button(page, 'Generate API Key').or_(button(page, 'Rotate API Key'))).to_be_visible()
    if button(page, 'Generate API Key').count():
        button(page, 'Generate API Key').click()
        expect(api_key_field(page)).to_have_value(KEY)
    created = page.locator('time').filter(has_text='Created')
    expect(created).to_have_text(re.compile(r'^Created (just now|\d+ min ago)$'))
    expect(created).to_have_attribute('title', re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d IST$'))
    created.focus()  # keyboard users see the exact time too
    shown = page.evaluate("el => getComputedStyle(el, '::after').content", created.element_handle())
    assert 'IST' in shown, shown

    # A rotation with a grace window: the notice, and the Activity entry that wrote an ISO time into its text.
    button(page, 'Rotate API Key').click()
    page.get_by_role('dialog').get_by_text('In 1 hour').click()
    button(page, 'Rotate').click()
    notice = page.get_by_role('note').filter(has_text='keeps working until')
    expect(notice).to_contain_text(re.compile(r'until \d{4}-\d\d-\d\d \d\d:\d\d IST \(in (59 min|1 h)\)'))
    expect(notice).not_to_contain_text('UTC')

    page.get_by_role('tab', name='Activity').click()
    expect(page.get_by_text(re.compile(r'Times in Asia/(Kolkata|Calcutta)'))).to_be_visible()
    table = page.locator('.cxt-activity-table')
    expect(table.get_by_text(re.compile(r'old key valid until \d{4}-\d\d-\d\d \d\d:\d\d IST'))).to_be_visible()
    expect(table).not_to_contain_text(ISO_TIME)
    when = table.locator('time').first
    expect(when).to_have_text(re.compile(r'^(just now|\d+ min ago)$'))
    expect(when).to_have_attribute('title', re.compile(r' IST$'))

    page.goto('/security')  # sessions and passkeys: the same clock
    seen = page.locator('time').filter(has_text='last seen').first
    expect(seen).to_have_text(re.compile(r'^last seen (just now|\d+ min ago)$'))
    expect(seen).to_have_attribute('title', re.compile(r' IST$'))
    expect(page.locator('body')).not_to_contain_text(' UTC')


def test_sessions_are_named_like_browsers_and_ended_ones_leave_the_list_at_once(
    admin_app: AppProcess, new_context: Callable[..., BrowserContext]
) -> None:
    mine = new_context(admin_app, viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    other = new_context(admin_app).new_page()
    third = new_context(admin_app).new_page()
    for page in (mine, other, third):
        sign_in(page)
    mine.goto('/security')
    rows = mine.locator('.q-card').filter(has_text='Active sessions').locator('.border')
    expect(rows.filter(has_text='This browser')).to_have_count(1)
    count = rows.count()
    assert count >= 3
    names = rows.locator('.text-weight-medium').all_inner_texts()
    assert set(names) == {'Chrome on Linux'}, names  # not `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/…`
    expect(mine.locator('body')).not_to_contain_text('Mozilla/5.0')

    # On a phone the badge sits beside or under the name, never over it or the times.
    badge = mine.get_by_text('This browser', exact=True)
    current = rows.filter(has_text='This browser')
    badge_box = badge.bounding_box()
    assert badge_box is not None
    for text in current.locator('.q-label, time').all():
        box = text.bounding_box()
        if box is None or text.inner_text() == 'This browser':
            continue
        overlaps = not (
            box['x'] + box['width'] <= badge_box['x']
            or badge_box['x'] + badge_box['width'] <= box['x']
            or box['y'] + box['height'] <= badge_box['y']
            or badge_box['y'] + badge_box['height'] <= box['y']
        )
        assert not overlaps, f'{text.inner_text()!r} at {box} under the badge at {badge_box}'

    # A browser signing itself out elsewhere: gone from this open list at once, without reloading it.
    button(third, 'Sign out').click()
    expect(button(third, 'Sign in')).to_be_visible()
    expect(rows).to_have_count(count - 1)
    # Signed out from this list: gone at once.
    rows.filter(has_not_text='This browser').first.get_by_role('button', name=re.compile('^Sign out')).click()
    expect(mine.get_by_text('That browser is signed out')).to_be_visible()
    expect(rows).to_have_count(count - 2)
    expect(other).to_have_url(re.compile(r'/login'))  # and that browser is sent to sign in, at once
    expect(button(other, 'Sign in')).to_be_visible()


def test_sign_out_everywhere_asks_first_and_says_so_after(admin_app: AppProcess, page: Page) -> None:
    sign_in(page)
    page.goto('/security')
    button(page, 'Sign out everywhere').click()
    dialog = page.get_by_role('dialog', name='Sign out everywhere?')
    expect(dialog).to_contain_text('this one too')
    button(dialog, 'Cancel').click()
    expect(dialog).to_have_count(0)
    page.reload()
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()  # nothing happened

    button(page, 'Sign out everywhere').click()
    button(page.get_by_role('dialog'), 'Sign out everywhere').click()
    expect(page).to_have_url(re.compile(r'/login'))
    expect(page.get_by_role('status')).to_contain_text('You are signed out everywhere')
    page.goto('/security')
    expect(button(page, 'Sign in')).to_be_visible()


def test_authenticator_set_up_can_be_cancelled_and_a_wrong_code_says_nothing_of_recovery_codes(
    admin_app: AppProcess, page: Page
) -> None:
    sign_in(page)
    page.goto('/security')
    button(page, 'Set up authenticator app').click()
    expect(page.get_by_role('img', name='QR code to scan with your authenticator app')).to_be_visible()
    button(page, 'Cancel').click()
    expect(page.get_by_role('img', name='QR code to scan with your authenticator app')).to_have_count(0)
    expect(button(page, 'Set up authenticator app')).to_be_focused()

    button(page, 'Set up authenticator app').click()
    secret = page.get_by_text(SECRET_TEXT).inner_text().replace(' ', '')
    right = TOTP(secret).now()
    wrong = f'{(int(right) + 1) % 1_000_000:06d}'
    page.get_by_label('Authentication code').fill(wrong)
    button(page, 'Confirm').click()
    error = page.get_by_role('alert').filter(has_text='Wrong code')
    expect(error).to_be_visible()
    expect(error).not_to_contain_text('recovery')
    button(page, 'Cancel').click()
    expect(page.get_by_text('Authenticator app: on since')).to_have_count(0)


def test_the_two_factor_rule_is_on_the_admins_organization_page(admin_app: AppProcess, page: Page) -> None:
    sign_in(page)
    page.goto('/security')
    expect(page.get_by_role('heading', name='Change password')).to_be_visible()
    expect(page.get_by_text('Require two-factor authentication for everyone')).to_have_count(0)  # not personal
    # Every card on the page is as wide as the first: no full and half widths taking turns.
    expect(page.get_by_role('heading', name='Passkeys')).to_be_visible()
    widths = {round(box['width']) for box in (card.bounding_box() for card in page.locator('.q-card').all()) if box}
    assert len(widths) == 1, widths

    page.get_by_role('link', name='Organization', exact=True).first.click()
    expect(page).to_have_url(re.compile(r'/organization$'))
    expect(page.get_by_role('heading', name='Sign-in rules')).to_be_visible()
    switch = page.get_by_role('switch', name='Require two-factor authentication for everyone')
    expect(switch).to_have_attribute('aria-checked', 'false')
    switch.click()  # the admin has no second factor yet: refused, and the switch says what is stored
    expect(page.get_by_text('Set up your own authenticator app or passkey first')).to_be_visible()
    expect(switch).to_have_attribute('aria-checked', 'false')


def test_unknown_addresses_get_our_own_404_page(admin_app: AppProcess, page: Page) -> None:
    response = page.goto('/no-such-page')
    assert response is not None and response.status == 404
    expect(page.get_by_role('heading', level=1)).to_have_text('Page not found')
    expect(page.get_by_role('link', name='CX Toolbox Dashboard')).to_be_visible()  # the product's frame
    expect(page.locator('body')).not_to_contain_text('HTTPException')

    sign_in(page)
    response = page.goto('/help/no-such-topic')
    assert response is not None and response.status == 404
    expect(page.get_by_role('heading', level=1)).to_have_text('Page not found')
    assert httpx.get(f'{admin_app.url}/help/sidekick', follow_redirects=False).status_code in {302, 303, 307}
    api = httpx.get(f'{admin_app.url}/api/no-such-thing')
    assert api.status_code == 404 and api.json() == {'error': 'not_found'}  # the API keeps its JSON


def test_activity_at_390_px_is_not_clipped_and_an_empty_result_says_one_thing(
    admin_app: AppProcess, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(admin_app, viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    sign_in(page)
    tab = page.get_by_role('tab', name='Activity')
    expect(tab).to_be_visible()
    clipped = tab.evaluate(
        """tab => [...tab.querySelectorAll('.q-tab__label')].some(label => label.scrollWidth > label.clientWidth)
                 || tab.getBoundingClientRect().right > window.innerWidth"""
    )
    assert not clipped, 'the Activity tab is cut off'
    assert tab.inner_text().strip() == 'Activity'
    tab.click()
    page.get_by_role('searchbox', name='Search').fill('nothing matches this at all')
    expect(page.get_by_text('No entries match these filters.')).to_be_visible()
    expect(page.get_by_text('No data available')).to_be_hidden()  # the table's own message is not shown as well
