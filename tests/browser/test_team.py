"""User Management in a real browser: an invitation by email accepted in a second browser, and `Hold to Remove`
held with a mouse, a finger on a phone and the keyboard."""

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import (
    ADMIN,
    ORGANIZATION,
    PHONE,
    REMOVE,
    Person,
    button,
    member_row,
    open_row_menu,
    overflow,
    remove_button,
    sign_in,
)
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.browser


@pytest.fixture
def admin_page(admin_app: AppProcess, new_context: Callable[..., BrowserContext]) -> Page:
    page = new_context(admin_app).new_page()
    sign_in(page)
    open_team_tab(page)
    return page


def open_team_tab(page: Page) -> None:
    page.get_by_role('tab', name='User Management').click()
    expect(page.get_by_text('Team Members')).to_be_visible()


def invite(admin_page: Page, smtp: SmtpServer, email: str) -> str:
    """Send an invitation from the User Management tab; returns the link from the mail that arrived."""
    already = len(smtp.messages)
    admin_page.get_by_label('Email').fill(email)
    button(admin_page, 'Send Invite').click()
    expect(admin_page.get_by_text(f'Invitation sent to {email}')).to_be_visible()
    mail = smtp.wait_for(already + 1)[-1]
    assert mail.recipients == [email]
    (link,) = set(mail.links)
    return link


def accept(page: Page, link: str, person: Person) -> None:
    page.goto(link)
    expect(page.get_by_text(f'Join {ORGANIZATION}')).to_be_visible()
    expect(page.get_by_label('Email')).to_have_value(person.email)
    page.get_by_label('Your name').fill(person.name)
    page.get_by_label('Password').fill(person.password)
    button(page, 'Accept invitation').click()
    expect(page.get_by_text(f'Signed in as {person.email}')).to_be_visible()


def add_member(admin_page: Page, smtp: SmtpServer, member_context: BrowserContext, person: Person) -> Page:
    """Invite `person`, accept in their own browser; returns their open dashboard."""
    link = invite(admin_page, smtp, person.email)
    page = member_context.new_page()
    accept(page, link, person)
    expect(admin_page.get_by_text(person.email, exact=True)).to_be_visible()  # the admin's list updates by itself
    return page


def assert_kept(admin_page: Page, member_page: Page, member: Person) -> None:
    time.sleep(1.5)  # longer than the rest of a hold: nothing may happen late either
    expect(admin_page.get_by_text(f'{member.email} removed')).to_have_count(0)
    expect(admin_page.get_by_text(member.email, exact=True)).to_be_visible()
    assert member_page.url.endswith('/')


def assert_removed(admin_page: Page, member_page: Page, member: Person) -> None:
    expect(admin_page.get_by_text(f'{member.email} removed')).to_be_visible()
    expect(admin_page.get_by_text(member.email, exact=True)).to_have_count(0)
    # Their open page is sent to sign in at once, without them doing anything, and says why.
    expect(member_page).to_have_url(re.compile(r'/login\?removed='), timeout=5_000)
    expect(member_page.get_by_text(f'You were removed from {ORGANIZATION}')).to_be_visible()
    member_page.goto('/')
    expect(member_page.get_by_role('button', name='Sign in')).to_be_visible()  # the old cookie no longer works


def test_an_invited_member_accepts_from_the_mail_and_sees_a_read_only_dashboard(
    admin_page: Page,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
    admin_app: AppProcess,
) -> None:
    member = Person('Mia Member', 'mia@example.com')
    link = invite(admin_page, smtp, member.email)
    assert link.startswith(f'{admin_app.url}/invite/')
    expect(admin_page.get_by_text(member.email, exact=True)).to_be_visible()  # pending in Invitations
    expect(admin_page.get_by_text('Sent', exact=True)).to_be_visible()

    page = new_context(admin_app).new_page()  # the member's own browser
    page.goto(link)
    expect(page.get_by_text(re.compile(f'{ADMIN.name}.* invited you to {ORGANIZATION} as member'))).to_be_visible()
    accept(page, link, member)

    expect(page).to_have_url(f'{admin_app.url}/')
    for admin_only in ('Reveal API Key', 'Rotate API Key', 'Manage Billing', 'Generate API Key', 'Save'):
        expect(button(page, admin_only)).to_have_count(0)
    expect(page.get_by_role('tab', name='Activity')).to_have_count(0)
    open_team_tab(page)
    expect(button(page, 'Send Invite')).to_have_count(0)
    expect(button(page, REMOVE)).to_have_count(0)
    expect(page.get_by_text(ADMIN.email, exact=True)).to_be_visible()

    # The link works once.
    used = new_context(admin_app).new_page()
    used.goto(link)
    expect(used.get_by_text('This invitation has already been used')).to_be_visible()
    expect(button(used, 'Accept invitation')).to_have_count(0)


def test_hold_to_remove_with_the_mouse_needs_the_full_hold(
    admin_page: Page,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
    admin_app: AppProcess,
) -> None:
    member = Person('Max Mouse', 'max@example.com')
    member_page = add_member(admin_page, smtp, new_context(admin_app), member)
    hold = remove_button(admin_page, member.email)
    expect(hold).to_have_text(REMOVE)
    expect(hold).to_have_accessible_name(REMOVE)
    expect(hold).to_have_accessible_description(member.name)  # which member it removes
    expect(admin_page.get_by_role('combobox', name=f'Role for {member.name}')).to_be_visible()

    hold.hover()
    admin_page.mouse.down()
    time.sleep(0.4)
    admin_page.mouse.up()
    # A short press says how it works, where screen readers announce it.
    expect(admin_page.get_by_role('alert').filter(has_text=f'Hold for 1.5 s to remove {member.name}')).to_be_visible()
    assert_kept(admin_page, member_page, member)

    hold.hover()
    admin_page.mouse.down()
    time.sleep(0.5)
    expect(hold).to_have_accessible_name(REMOVE)  # the fill is drawn in CSS: the name stays while it fills
    time.sleep(1.5)
    admin_page.mouse.up()
    assert_removed(admin_page, member_page, member)
    expect(admin_page.get_by_label('Search members')).to_be_focused()  # not lost on the body with the row


def test_the_next_click_after_a_removal_is_not_swallowed(
    admin_page: Page,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
    admin_app: AppProcess,
) -> None:
    """The release's own click is swallowed (the row under the pointer has gone); the admin's next click is theirs."""
    member = Person('Quinn Quick', 'quinn@example.com')
    member_page = add_member(admin_page, smtp, new_context(admin_app), member)
    remove_button(admin_page, member.email).hover()
    admin_page.mouse.down()
    expect(admin_page.get_by_text(f'{member.email} removed')).to_be_visible()
    admin_page.mouse.up()
    # At once, as a person who knows what they want next: another invitation.
    admin_page.get_by_label('Email').fill('next@example.com')
    button(admin_page, 'Send Invite').click()
    expect(admin_page.get_by_text('Invitation sent to next@example.com')).to_be_visible()
    assert_removed(admin_page, member_page, member)


def test_hold_to_remove_by_touch_on_a_phone(
    admin_app: AppProcess,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
) -> None:
    phone = new_context(admin_app, viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=3)
    admin_page = phone.new_page()
    sign_in(admin_page)
    open_team_tab(admin_page)
    member = Person('Tia Touch', 'tia@example.com')
    member_page = add_member(admin_page, smtp, new_context(admin_app), member)
    hold = remove_button(admin_page, member.email)
    touch = phone.new_cdp_session(admin_page)  # real touch input: Chromium makes the pointer events from it

    def press(seconds: float) -> None:
        hold.scroll_into_view_if_needed()  # on a phone the row scrolls sideways inside its card
        box = hold.bounding_box()
        assert box is not None
        point = {'x': box['x'] + box['width'] / 2, 'y': box['y'] + box['height'] / 2}
        under_finger = admin_page.evaluate(
            '([x, y]) => document.elementFromPoint(x, y)?.closest("button")?.innerText', [point['x'], point['y']]
        )
        assert under_finger == REMOVE, f'the finger at {point} would touch {under_finger!r}'
        touch.send('Input.dispatchTouchEvent', {'type': 'touchStart', 'touchPoints': [point]})
        time.sleep(seconds)
        touch.send('Input.dispatchTouchEvent', {'type': 'touchEnd', 'touchPoints': []})

    press(0.4)
    assert_kept(admin_page, member_page, member)
    press(2.0)
    # assert_removed also proves that lifting the finger clicked nothing that moved under it once the row was gone.
    assert_removed(admin_page, member_page, member)


def test_hold_to_remove_with_the_keyboard(
    admin_page: Page,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
    admin_app: AppProcess,
) -> None:
    member = Person('Kim Keys', 'kim@example.com')
    member_page = add_member(admin_page, smtp, new_context(admin_app), member)
    hold = remove_button(admin_page, member.email)
    hold.focus()

    admin_page.keyboard.down(' ')
    time.sleep(0.4)
    admin_page.keyboard.up(' ')
    assert_kept(admin_page, member_page, member)

    expect(hold).to_be_focused()
    admin_page.keyboard.down(' ')
    time.sleep(2.0)
    admin_page.keyboard.up(' ')
    assert_removed(admin_page, member_page, member)
    expect(admin_page.get_by_label('Search members')).to_be_focused()  # not lost on the body with the row


def test_on_a_phone_each_row_is_a_card_that_keeps_its_labels(
    admin_app: AppProcess,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
) -> None:
    phone = new_context(admin_app, viewport=PHONE, has_touch=True, is_mobile=True)
    page = phone.new_page()
    sign_in(page)
    open_team_tab(page)
    invitee = 'ivy@example.com'
    invite(page, smtp, invitee)
    card = page.get_by_role('row').filter(has=page.get_by_text(invitee, exact=True))
    for label in ('Email', 'Role', 'Invited by', 'Expires', 'Status'):
        expect(card.get_by_text(label, exact=True)).to_be_visible()
    expect(card.get_by_text(ADMIN.name, exact=True)).to_be_visible()
    me = member_row(page, ADMIN.email)
    for label in ('Name', 'Role', 'Status'):
        expect(me.get_by_text(label, exact=True)).to_be_visible()
    expect(me.get_by_text('You', exact=True)).to_be_visible()
    assert overflow(page) is None, overflow(page)

    # On a wide screen the labels are the column headings instead.
    page.set_viewport_size({'width': 1280, 'height': 900})
    expect(card.get_by_text('Invited by', exact=True)).to_be_hidden()
    expect(page.get_by_role('columnheader', name='Invited by')).to_be_visible()


def test_an_admin_copies_a_reset_link_for_a_member(
    admin_page: Page,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
    admin_app: AppProcess,
) -> None:
    member = Person('Rosa Reset', 'rosa@example.com')
    add_member(admin_page, smtp, new_context(admin_app), member)
    menu_button = member_row(admin_page, member.email).get_by_role('button', name='More actions')
    expect(menu_button).to_have_accessible_description(member.name)
    open_row_menu(admin_page, member.email).get_by_text('Copy reset link', exact=True).click()
    dialog = admin_page.get_by_role('dialog', name=f'Password reset link for {member.name}')
    expect(dialog).to_be_visible()
    link = dialog.get_by_label('Password reset link').input_value()
    assert link.startswith(f'{admin_app.url}/reset-password/')
    button(dialog, 'Close').click()
    expect(dialog).to_have_count(0)

    visitor = new_context(admin_app).new_page()
    visitor.goto(link)
    expect(visitor.get_by_text('Choose a new password')).to_be_visible()
