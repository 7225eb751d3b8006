"""The console an admin can trust, in a real browser (issue 24): a role change and `Revoke old key now` are confirmed
in dialogs that say what will happen; the team tables sort from the keyboard and on a phone; the rotate dialog's
choices move with arrow keys and its warning follows them; the chart and notices follow a rotation at once; the row
menu, the two-factor and last sign-in columns with their filter; expired invitations with `Resend`; the used
invitation page's `Sign in`; the key card's `Copy`, example request and button order; the subdomain suffix."""

import re
import sqlite3
import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, KEY, PHONE, Person, api_key_field, button, sign_in
from tests.browser.test_team import accept, add_member, invite, member_row, open_row_menu, open_team_tab
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.browser

LONG_AGO = '2000-01-01 00:00:00.000000'


def sql(app: AppProcess, statement: str, *parameters: object) -> None:
    """Change rows in the running app's SQLite database (WAL mode: the app keeps working)."""
    with sqlite3.connect(app.data_dir / 'cxt.sqlite3', timeout=30) as connection:
        connection.execute(statement, parameters)


@pytest.fixture
def admin_page(admin_app: AppProcess, new_context: Callable[..., BrowserContext]) -> Page:
    page = new_context(admin_app, permissions=['clipboard-read', 'clipboard-write']).new_page()
    sign_in(page)
    return page


def names_in_order(page: Page) -> list[str]:
    table = page.locator('.cxt-team-table').last  # Team Members is the last table of the tab
    return [text.strip() for text in table.locator('tbody tr td:first-child span[id]').all_inner_texts()]


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, 'not within time'
        time.sleep(0.1)


def ensure_key(page: Page) -> None:
    expect(page.get_by_role('button', name=re.compile('^(Generate|Rotate) API Key$'))).to_be_visible()
    if button(page, 'Generate API Key').count():
        button(page, 'Generate API Key').click()
        expect(api_key_field(page)).to_have_value(KEY)
        button(page, 'Hide API Key').click()


# --- 1. A role change is confirmed in a dialog; the keyboard never changes a role by itself ----------------------


def test_a_role_change_from_the_keyboard_asks_first_and_keeps_the_focus(
    admin_page: Page, smtp: SmtpServer, new_context: Callable[..., BrowserContext], admin_app: AppProcess
) -> None:
    member = Person('Rolf Role', 'rolf@example.com')
    open_team_tab(admin_page)
    member_page = add_member(admin_page, smtp, new_context(admin_app), member)
    select = admin_page.get_by_role('combobox', name=f'Role for {member.name}')
    select.focus()
    admin_page.keyboard.press('ArrowDown')  # what made a member an admin at once before
    dialog = admin_page.get_by_role('dialog', name=f'Make {member.name} an admin?')
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text('will be able to reveal and rotate the API key')
    admin_page.keyboard.press('Escape')
    expect(dialog).to_have_count(0)
    expect(select).to_have_value('member')  # nothing changed
    expect(select).to_be_focused()
    expect(member_page.get_by_role('tab', name='Activity')).to_have_count(0)

    admin_page.keyboard.press('ArrowDown')
    expect(dialog).to_be_visible()
    expect(button(dialog, 'Make admin')).to_be_focused()
    admin_page.keyboard.press('Enter')
    expect(admin_page.get_by_text(f'{member.email} is now admin')).to_be_visible()
    expect(select).to_have_value('admin')
    expect(select).to_be_focused()
    # Her open page reloads with the admin's tabs.
    expect(member_page.get_by_role('tab', name='Activity')).to_be_visible(timeout=15_000)


# --- 2 and 6. Revoke asks with the old key's traffic; the rotate dialog's choices and warning; the chart follows -----


def test_rotate_dialog_choices_move_with_arrow_keys_and_say_when_the_old_key_ends(
    admin_page: Page, admin_app: AppProcess
) -> None:
    ensure_key(admin_page)
    card = admin_page.locator('.q-card').filter(has=admin_page.get_by_role('heading', name="The key's traffic"))
    # Rough edges first, while no widget has called: one line instead of a blank chart, a toggle with room.
    expect(card.get_by_text('No widget has called the API in this period')).to_be_visible()
    expect(card.locator('canvas')).to_be_hidden()
    box = card.bounding_box()
    assert box is not None and box['height'] < 320, box
    padding = card.get_by_role('button', name='Last 30 days, by day').evaluate(
        'e => parseFloat(getComputedStyle(e).paddingLeft)'
    )
    assert padding >= 12, f'toggle padding {padding} px'

    button(admin_page, 'Reveal API Key').click()
    expect(api_key_field(admin_page)).to_have_value(KEY)
    old_key = api_key_field(admin_page).input_value()
    assert KEY.match(old_key)
    endpoint = f'{admin_app.url}/api/v1/organization'
    assert {httpx.get(endpoint, headers={'X-API-Key': old_key}).status_code for _ in range(2)} == {200}
    admin_page.reload()
    summary = card.get_by_text(re.compile(r'^Last 7 days, by hour:'))
    expect(summary).to_contain_text(f'current key cxt_{"•" * 16}{old_key[-4:]}: 2 accepted')
    expect(card.locator('canvas').first).to_be_visible()
    button(admin_page, 'Rotate API Key').click()
    dialog = admin_page.get_by_role('dialog', name='Rotate API Key?')
    immediately = dialog.get_by_role('radio', name='Immediately')
    expect(immediately).to_be_checked()
    warning = dialog.get_by_text(re.compile('^The old key (stops|keeps)'))
    expect(warning).to_contain_text('stops working the moment you rotate')
    immediately.focus()
    admin_page.keyboard.press('ArrowDown')
    hour = dialog.get_by_role('radio', name='In 1 hour')
    expect(hour).to_be_checked()
    expect(hour).to_be_focused()
    expect(warning).to_contain_text(re.compile(r'keeps working until \d{4}-\d\d-\d\d \d\d:\d\d.*\(in 1 hour\)'))
    admin_page.keyboard.press('ArrowDown')
    expect(dialog.get_by_role('radio', name='In 24 hours')).to_be_checked()
    expect(warning).to_contain_text('(in 24 hours)')
    admin_page.keyboard.press('ArrowUp')
    expect(hour).to_be_checked()
    admin_page.keyboard.press('End')
    expect(dialog.get_by_role('radio', name='In 7 days')).to_be_checked()
    admin_page.keyboard.press('ArrowDown')  # wraps round
    expect(immediately).to_be_checked()
    admin_page.keyboard.press('ArrowDown')
    button(dialog, 'Rotate').click()
    expect(dialog).to_have_count(0)

    # At once, not after the chart's minute: the new key is the current one, the old one is called old.
    expect(api_key_field(admin_page)).not_to_have_value(re.compile(f'{re.escape(old_key[-4:])}$'))  # redrawn
    new_last4 = api_key_field(admin_page).input_value()[-4:]
    expect(summary).to_contain_text(f'current key cxt_{"•" * 16}{new_last4}: 0 accepted')
    expect(summary).to_contain_text(f'old key cxt_{"•" * 16}{old_key[-4:]}: 2 accepted')

    revoke = button(admin_page, 'Revoke old key now')
    revoke.click()
    confirm = admin_page.get_by_role('dialog', name='Revoke the old key now?')
    expect(confirm).to_contain_text('Old key: 2 requests in the last hour')
    expect(confirm).to_contain_text('stops working at once')
    button(confirm, 'Cancel').click()
    expect(confirm).to_have_count(0)
    expect(revoke).to_be_visible()  # nothing revoked
    revoke.click()
    button(confirm, 'Revoke').click()
    expect(admin_page.get_by_text('no longer works')).to_be_visible()
    expect(revoke).to_have_count(0)


def test_revoke_old_key_asks_for_the_password_when_it_was_entered_long_ago(
    admin_page: Page, admin_app: AppProcess
) -> None:
    ensure_key(admin_page)
    button(admin_page, 'Rotate API Key').click()
    dialog = admin_page.get_by_role('dialog', name='Rotate API Key?')
    dialog.get_by_role('radio', name='In 1 hour').click()
    button(dialog, 'Rotate').click()
    revoke = button(admin_page, 'Revoke old key now').first
    expect(revoke).to_be_visible()
    sql(
        admin_app,
        'UPDATE browser_session SET password_confirmed_at = ? WHERE user_id = (SELECT id FROM user WHERE email = ?)',
        LONG_AGO,
        ADMIN.email,
    )
    revoke.click()
    password = admin_page.get_by_role('dialog', name='Confirm your password to revoke the old key')
    expect(password).to_be_visible()
    password.get_by_role('textbox', name='Password').fill(ADMIN.password)
    button(password, 'Confirm').click()
    confirm = admin_page.get_by_role('dialog', name='Revoke the old key now?')
    button(confirm, 'Revoke').click()
    expect(admin_page.get_by_text('no longer works')).to_be_visible()


# --- 4. Sorting from the keyboard, and on a phone -------------------------------------------------------------------


def test_team_headings_sort_from_the_keyboard_and_say_how(
    admin_page: Page, smtp: SmtpServer, new_context: Callable[..., BrowserContext], admin_app: AppProcess
) -> None:
    open_team_tab(admin_page)
    add_member(admin_page, smtp, new_context(admin_app), Person('Zed Zulu', 'zed@example.com'))
    table = admin_page.locator('.cxt-team-table').last
    name_heading = table.get_by_role('columnheader', name='Name')
    sort_name = name_heading.get_by_role('button', name='Name')
    expect(name_heading).to_have_attribute('aria-sort', 'none')
    admin_page.get_by_label('Search members').focus()
    for _ in range(10):  # Tab reaches the heading like any control
        admin_page.keyboard.press('Tab')
        if sort_name.evaluate('e => e === document.activeElement'):
            break
    expect(sort_name).to_be_focused()
    admin_page.keyboard.press('Enter')
    expect(name_heading).to_have_attribute('aria-sort', 'ascending')
    expect(name_heading.locator('.cxt-sort-arrow.cxt-sorted')).to_be_visible()  # the arrow shows without hovering
    names = names_in_order(admin_page)
    assert names == sorted(names), names
    admin_page.keyboard.press('Space')
    expect(name_heading).to_have_attribute('aria-sort', 'descending')
    expect(sort_name).to_be_focused()
    eventually(lambda: names_in_order(admin_page) == sorted(names, reverse=True))
    expect(table.get_by_role('columnheader', name='Email')).to_have_attribute('aria-sort', 'none')


def test_on_a_phone_a_sort_control_replaces_the_headings(
    admin_app: AppProcess, smtp: SmtpServer, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(admin_app, viewport=PHONE, has_touch=True, is_mobile=True).new_page()
    sign_in(page)
    open_team_tab(page)
    if member_row(page, 'zed@example.com').count() == 0:
        add_member(page, smtp, new_context(admin_app), Person('Zed Zulu', 'zed@example.com'))
    expect(page.locator('.cxt-team-table').last.get_by_role('columnheader')).to_have_count(0)  # hidden on phones
    sort = page.get_by_role('combobox', name='Sort by')
    expect(sort).to_be_visible()
    sort.click()
    page.get_by_role('option', name='Name (Z to A)').click()
    eventually(lambda: names_in_order(page)[:1] == ['Zed Zulu'])
    names = names_in_order(page)
    assert names == sorted(names, reverse=True), names
    page.set_viewport_size({'width': 1280, 'height': 900})
    expect(sort).to_be_hidden()  # wide screens sort by the headings, which show the same order
    expect(page.locator('.cxt-team-table').last.get_by_role('columnheader', name='Name')).to_have_attribute(
        'aria-sort', 'descending'
    )


# --- 9. The row menu, two-factor and last sign-in columns with a filter, `Active` ---------------------------------


def test_rare_actions_live_in_a_row_menu_and_admins_see_two_factor_and_last_sign_in(
    admin_page: Page, smtp: SmtpServer, new_context: Callable[..., BrowserContext], admin_app: AppProcess
) -> None:
    member = Person('Meg Menu', 'meg@example.com')
    open_team_tab(admin_page)
    add_member(admin_page, smtp, new_context(admin_app), member)
    table = admin_page.locator('.cxt-team-table').last
    expect(admin_page.get_by_role('button', name='Hold to Remove')).to_have_count(0)  # none until a menu opens
    expect(admin_page.get_by_role('button', name='Copy reset link')).to_have_count(0)
    for heading in ('Two-factor', 'Last sign-in', 'Status'):
        expect(table.get_by_role('columnheader', name=heading)).to_be_visible()
    row = member_row(admin_page, member.email)
    expect(row.get_by_text('Active', exact=True)).to_be_visible()
    expect(row.get_by_text('Off', exact=True)).to_be_visible()
    signed_in = row.get_by_text('just now', exact=True)  # she just signed in: relative, the exact time on hover
    expect(signed_in).to_be_visible()
    expect(signed_in).to_have_attribute('title', re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d'))

    menu = open_row_menu(admin_page, member.email)
    items = menu.get_by_role('menuitem')
    expect(items).to_have_text(['Copy reset link', 'Hold to Remove'])
    items.first.focus()
    admin_page.keyboard.press('ArrowDown')
    expect(items.last).to_be_focused()
    admin_page.keyboard.press('ArrowDown')  # wraps round
    expect(items.first).to_be_focused()
    admin_page.keyboard.press('Escape')
    expect(menu).to_have_count(0)

    # The filter: nobody has a second factor; Meg has not signed in for 30 days once her sign-ins are that old.
    show = admin_page.get_by_role('combobox', name='Show')
    show.click()
    admin_page.get_by_role('option', name='No sign-in for 30 days').click()
    expect(member_row(admin_page, member.email)).to_have_count(0)
    sql(
        admin_app,
        'UPDATE audit_event SET created_at = ? WHERE actor_email = ? AND action IN '
        "('login.succeeded', 'invitation.accepted')",
        LONG_AGO,
        member.email,
    )
    admin_page.get_by_label('Search members').fill('meg')
    expect(member_row(admin_page, member.email)).to_be_visible()
    expect(member_row(admin_page, member.email).get_by_text('2000-01-01', exact=False)).to_be_visible()
    show.click()
    admin_page.get_by_role('option', name='Without two-factor').click()
    expect(member_row(admin_page, member.email)).to_be_visible()
    expect(member_row(admin_page, ADMIN.email)).to_have_count(0)  # searched for meg


# --- 10. Expired invitations with Resend; the used invitation page offers Sign in ---------------------------------


def test_an_expired_invitation_stays_listed_with_resend_and_a_used_link_offers_sign_in(
    admin_page: Page, smtp: SmtpServer, new_context: Callable[..., BrowserContext], admin_app: AppProcess
) -> None:
    open_team_tab(admin_page)
    old_link = invite(admin_page, smtp, 'late@example.com')
    sql(
        admin_app,
        "UPDATE invitation SET expires_at = datetime('now', '-2 days') WHERE email = ?",
        'late@example.com',
    )
    admin_page.reload()
    open_team_tab(admin_page)
    row = admin_page.get_by_role('row').filter(has=admin_page.get_by_text('late@example.com', exact=True))
    expect(row.get_by_text('Expired', exact=True)).to_be_visible()
    expect(row.get_by_role('button', name='Copy link')).to_have_count(0)
    expect(row.get_by_role('button', name='Revoke')).to_have_count(0)
    before = len(smtp.messages)
    row.get_by_role('button', name='Resend').click()
    expect(admin_page.get_by_text('Invitation sent again to late@example.com')).to_be_visible()
    expect(row.get_by_text('Sent', exact=True)).to_be_visible()
    mail = smtp.wait_for(before + 1)[-1]
    (new_link,) = set(mail.links)
    assert new_link != old_link

    person = Person('Lara Late', 'late@example.com')
    joined = new_context(admin_app).new_page()
    accept(joined, new_link, person)
    again = new_context(admin_app).new_page()
    again.goto(new_link)
    expect(again.get_by_text('This invitation has already been used')).to_be_visible()
    expect(again.get_by_text('Ask the person who invited you')).to_have_count(0)
    again.get_by_role('link', name='Sign in').click()
    expect(again).to_have_url(re.compile('/login'))
    sign_in(again, person)


# --- 12 and rough edges. The key card; the subdomain suffix; the empty chart ----------------------------------------


def test_the_key_card_copy_in_the_field_an_example_request_and_billing_last(
    admin_page: Page, admin_app: AppProcess
) -> None:
    ensure_key(admin_page)
    buttons = admin_page.locator('.q-card').first.get_by_role('button').all_inner_texts()
    labels = [text.split('\n')[-1].strip() for text in buttons]
    assert labels.index('Manage Billing') > labels.index('Reveal API Key'), labels
    button(admin_page, 'Reveal API Key').click()
    field = api_key_field(admin_page)
    expect(field).to_have_value(KEY)
    key_box = admin_page.locator('.relative').filter(has=field).first
    button(key_box, 'Copy').click()
    expect(admin_page.get_by_text('API key copied to the clipboard')).to_be_visible()
    assert admin_page.evaluate('navigator.clipboard.readText()') == field.input_value()
    button(admin_page, 'Hide API Key').click()

    admin_page.get_by_text('Example request').click()
    expect(admin_page.get_by_text(f'API address: {admin_app.url}/api/v1/organization')).to_be_visible()
    curl = f'curl -H "Authorization: Bearer $CXT_API_KEY" {admin_app.url}/api/v1/organization'
    expect(admin_page.get_by_text(curl)).to_be_visible()


def test_a_new_key_stays_shown_and_says_so(admin_app: AppProcess, new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(admin_app).new_page()
    sign_in(page)
    ensure_key(page)
    button(page, 'Rotate API Key').click()
    button(page.get_by_role('dialog'), 'Rotate').click()
    expect(page.get_by_role('dialog')).to_have_count(0)
    field = page.get_by_role('textbox', name='API Key')
    expect(field).to_have_value(KEY)
    key_box = page.locator('.q-field').filter(has=field)
    expect(key_box.get_by_text('Your new key stays shown until you hide it')).to_be_visible()
    button(page, 'Hide API Key').click()


def test_the_subdomain_suffix_sits_right_after_the_value(admin_page: Page) -> None:
    field = admin_page.get_by_label('Kustomer Organization Sub Domain')
    field.fill('acme')
    gap = field.evaluate(
        """(input) => {
          const suffix = input.closest('.q-field').querySelector('.q-field__suffix');
          return suffix.getBoundingClientRect().left - input.getBoundingClientRect().right;
        }"""
    )
    assert -1 <= gap <= 24, f'the suffix is {gap:.0f} px from the value'
    box = field.bounding_box()
    assert box is not None
    field.fill('a-much-longer-subdomain-name')
    wider = field.bounding_box()
    assert wider is not None and wider['width'] > box['width']  # grows with what is typed
