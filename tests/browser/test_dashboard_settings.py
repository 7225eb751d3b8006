"""Dashboard Settings in a real browser: the API key (generate, reveal, copy, rotate) and the Kustomer subdomains."""

import re
import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import DESKTOP, KEY, MASKED_KEY, PHONE, api_key_field, button, overflow, sign_in
from ui.components.secret_field import REVEAL_SECONDS

pytestmark = pytest.mark.browser


@pytest.fixture(scope='module')
def keyed_app(admin_app: AppProcess, browser: Browser) -> AppProcess:
    """The set-up app after the admin pressed `Generate API Key`, which shows the new key once."""
    context = browser.new_context(base_url=admin_app.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page)
    expect(page.get_by_text('Your organization has no API key yet.')).to_be_visible()
    button(page, 'Generate API Key').click()
    expect(api_key_field(page)).to_have_value(KEY)
    expect(button(page, 'Rotate API Key')).to_be_visible()
    context.close()
    return admin_app


@pytest.fixture
def admin_page(keyed_app: AppProcess, new_context: Callable[..., BrowserContext]) -> Page:
    page = new_context(keyed_app, permissions=['clipboard-read', 'clipboard-write']).new_page()
    sign_in(page)
    return page


def reveal(page: Page) -> str:
    button(page, 'Reveal API Key').click()
    field = api_key_field(page)
    expect(field).to_have_value(KEY)
    return field.input_value()


def confirm_revoke(page: Page) -> None:
    """The revoke confirmation, answered with the keyboard: Cancel has the focus (the safe choice); Tab, Enter."""
    dialog = page.get_by_role('dialog', name='Revoke the old key now?')
    expect(dialog.get_by_text('Old key: 0 requests in the last hour')).to_be_visible()
    expect(button(dialog, 'Cancel')).to_be_focused()
    page.keyboard.press('Tab')
    expect(button(dialog, 'Revoke')).to_be_focused()
    page.keyboard.press('Enter')
    expect(dialog).to_have_count(0)


def organization_status(app: AppProcess, key: str) -> int:
    return httpx.get(f'{app.url}/api/v1/organization', headers={'Authorization': f'Bearer {key}'}).status_code


def test_the_key_is_masked_until_revealed_and_masks_itself_again_after_30_seconds(admin_page: Page) -> None:
    field = api_key_field(admin_page)
    expect(field).to_have_value(MASKED_KEY)
    masked = field.input_value()
    expect(button(admin_page, 'Hide API Key')).to_be_hidden()
    expect(button(admin_page, 'Copy')).to_be_hidden()

    clicked = time.monotonic()
    key = reveal(admin_page)
    assert key[-4:] == masked[-4:]
    expect(button(admin_page, 'Hide API Key')).to_be_visible()
    # `Copy` sits inside the key's field, where the eye already is.
    key_box = admin_page.locator('.relative').filter(has=field).first
    expect(button(key_box, 'Copy')).to_be_visible()
    expect(button(admin_page, 'Reveal API Key')).to_be_hidden()
    # It says it will hide itself, and when.
    expect(key_box.get_by_text(re.compile(r'Hidden again in \d+ s'))).to_be_visible()

    expect(field).to_have_value(masked, timeout=(REVEAL_SECONDS + 10) * 1000)
    elapsed = time.monotonic() - clicked
    assert REVEAL_SECONDS - 0.5 <= elapsed <= REVEAL_SECONDS + 5, f'masked again after {elapsed:.1f} s'
    expect(button(admin_page, 'Reveal API Key')).to_be_visible()
    expect(button(admin_page, 'Copy')).to_be_hidden()


def test_hide_masks_the_key_at_once_and_focus_goes_to_reveal(admin_page: Page) -> None:
    reveal(admin_page)
    button(admin_page, 'Hide API Key').focus()
    admin_page.keyboard.press('Enter')
    expect(api_key_field(admin_page)).to_have_value(MASKED_KEY)
    expect(button(admin_page, 'Reveal API Key')).to_be_visible()
    expect(button(admin_page, 'Reveal API Key')).to_be_focused()  # not lost with the Hide button that went away


def test_revoking_an_old_key_leaves_focus_on_the_key_card(keyed_app: AppProcess, admin_page: Page) -> None:
    old_key = reveal(admin_page)
    revoke = admin_page.get_by_role('button', name='Revoke old key now')
    for rotations in (1, 2):  # two rotations with a grace window: two old keys, each with its own notice
        button(admin_page, 'Rotate API Key').click()
        dialog = admin_page.get_by_role('dialog', name='Rotate API Key?')
        expect(dialog.get_by_role('radio', name='Immediately')).to_be_checked()  # the dialog is up, with its default
        dialog.get_by_role('radio', name='In 1 hour').click()
        expect(dialog.get_by_role('radio', name='In 1 hour')).to_be_checked()
        button(dialog, 'Rotate').click()
        expect(admin_page.get_by_role('dialog')).to_have_count(0)
        # Done once its notice shows: the card is redrawn then, so a click before it can land on the button it
        # replaces (as a person's would not: they see the new key first).
        expect(revoke).to_have_count(rotations)

    revoke.first.focus()
    admin_page.keyboard.press('Enter')
    confirm_revoke(admin_page)
    expect(revoke).to_have_count(1)
    remaining = admin_page.get_by_role('note').filter(has_text='keeps working until')
    expect(remaining).to_be_focused()  # the notice that is left, read out next

    revoke.focus()
    admin_page.keyboard.press('Enter')
    confirm_revoke(admin_page)
    expect(revoke).to_have_count(0)
    expect(admin_page.get_by_role('heading', name='Step 1: Generate API Key', level=2)).to_be_focused()
    assert organization_status(keyed_app, old_key) == 401


def test_on_a_phone_the_revealed_key_wraps_and_can_still_be_copied(
    keyed_app: AppProcess, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(keyed_app, viewport=PHONE, permissions=['clipboard-read', 'clipboard-write']).new_page()
    sign_in(page)
    key = reveal(page)
    field = api_key_field(page)
    assert overflow(page) is None
    # Every character is inside the field's box: the key wraps onto a second line rather than being cut off.
    sizes = field.evaluate('e => [e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight]')
    scroll_width, client_width, scroll_height, client_height = sizes
    assert scroll_width <= client_width and scroll_height <= client_height + 1, sizes
    line_height = field.evaluate('e => parseFloat(getComputedStyle(e).lineHeight)')
    assert client_height >= 1.5 * line_height, 'two lines or more'
    button(page, 'Copy').click()
    expect(page.get_by_text('API key copied to the clipboard')).to_be_visible()
    assert page.evaluate('navigator.clipboard.readText()') == key


def test_copy_puts_the_key_on_the_clipboard(admin_page: Page) -> None:
    admin_page.evaluate("navigator.clipboard.writeText('something else')")
    key = reveal(admin_page)
    button(admin_page, 'Copy').click()
    expect(admin_page.get_by_text('API key copied to the clipboard')).to_be_visible()
    assert admin_page.evaluate('navigator.clipboard.readText()') == key


def test_rotating_immediately_makes_the_old_key_fail_at_once(keyed_app: AppProcess, admin_page: Page) -> None:
    old_key = reveal(admin_page)
    assert organization_status(keyed_app, old_key) == 200

    button(admin_page, 'Rotate API Key').click()
    dialog = admin_page.get_by_role('dialog')
    expect(dialog.get_by_text('stops working until you replace it')).to_be_visible()
    expect(dialog.get_by_text('The old key stops working the moment you rotate')).to_be_visible()
    expect(dialog.get_by_role('radio', name='Immediately')).to_be_checked()
    expect(dialog.get_by_role('radio', name='In 1 hour')).not_to_be_checked()
    expect(dialog.get_by_role('radio', name='In 24 hours')).not_to_be_checked()
    expect(dialog.get_by_role('radio', name='In 7 days')).not_to_be_checked()
    expect(dialog).to_have_accessible_name('Rotate API Key?')
    button(dialog, 'Rotate').click()

    expect(admin_page.get_by_text('API key rotated')).to_be_visible()
    field = api_key_field(admin_page)
    expect(field).to_have_value(KEY)  # the new key is shown right away
    new_key = field.input_value()
    assert new_key != old_key
    response = httpx.get(f'{keyed_app.url}/api/v1/organization', headers={'Authorization': f'Bearer {old_key}'})
    assert response.status_code == 401
    assert response.json()['error'] == 'invalid_api_key'
    assert organization_status(keyed_app, new_key) == 200
    expect(admin_page.get_by_text('keeps working until')).to_have_count(0)  # no grace window was chosen


def test_cancelling_the_rotation_keeps_the_key(keyed_app: AppProcess, admin_page: Page) -> None:
    key = reveal(admin_page)
    button(admin_page, 'Rotate API Key').click()
    button(admin_page.get_by_role('dialog'), 'Cancel').click()
    expect(admin_page.get_by_role('dialog')).to_have_count(0)
    assert organization_status(keyed_app, key) == 200


def test_subdomains_are_normalized_saved_and_shown_after_a_reload(keyed_app: AppProcess, admin_page: Page) -> None:
    subdomain = admin_page.get_by_label('Kustomer Organization Sub Domain')
    sandbox = admin_page.get_by_label('Kustomer Sandbox Organization Sub Domain')
    subdomain.fill('https://ACME.kustomerapp.com/app/customers')
    sandbox.fill('acme-sandbox')
    button(admin_page, 'Save').click()
    expect(admin_page.get_by_text('Subdomains saved')).to_be_visible()
    expect(subdomain).to_have_value('acme')

    admin_page.reload()
    expect(admin_page.get_by_label('Kustomer Organization Sub Domain')).to_have_value('acme')
    expect(admin_page.get_by_label('Kustomer Sandbox Organization Sub Domain')).to_have_value('acme-sandbox')


def test_an_invalid_subdomain_shows_an_inline_error_and_saves_nothing(admin_page: Page) -> None:
    subdomain = admin_page.get_by_label('Kustomer Organization Sub Domain')
    before = subdomain.input_value()
    subdomain.fill('not a subdomain!')
    button(admin_page, 'Save').click()
    expect(admin_page.get_by_text('Not a valid subdomain')).to_be_visible()
    expect(admin_page.get_by_text('Subdomains saved')).to_have_count(0)
    expect(subdomain).to_have_attribute('aria-invalid', 'true')
    second = admin_page.context.new_page()  # nothing was saved
    second.goto('/')
    expect(second.get_by_label('Kustomer Organization Sub Domain')).to_have_value(before)

    subdomain.fill('fixed-name')  # a corrected value saves, and the error goes away
    subdomain.press('Enter')
    expect(admin_page.get_by_text('Subdomains saved')).to_be_visible()
    expect(admin_page.get_by_text('Not a valid subdomain')).to_have_count(0)
    expect(subdomain).not_to_have_attribute('aria-invalid', 'true')
    second.reload()
    expect(second.get_by_label('Kustomer Organization Sub Domain')).to_have_value('fixed-name')
