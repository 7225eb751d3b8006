"""User Management as people use it: invite by email, accept in a second browser, change roles, hold to remove."""

import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from nicegui import background_tasks, storage, ui
from nicegui.testing import User
from sqlmodel import Session, select

from models import Role
from models import User as Account
from services.db import read_scope
from services.identity import sessions
from tests import smtp_server as smtp
from tests.smtp_server import SmtpServer
from tests.ui import helpers
from tests.ui.helpers import ADMIN_EMAIL, PASSWORD, in_database, open_handoff, password_entered_minutes_ago
from ui.session import start_url
from ui.tabs.team_members import ROLE_OPTIONS

MEMBER_EMAIL = 'grace@example.com'
MEMBER_PASSWORD = 'grace password 123'

mail_env, smtp_server = smtp.mail_env, smtp.smtp_server  # fixtures
silent_smtp_server, dropping_smtp_server = smtp.silent_smtp_server, smtp.dropping_smtp_server  # fixtures


async def set_up_organization(user: User) -> None:
    await helpers.set_up_organization(user)
    user.find('User Management').click()
    await user.should_see(marker='invite-email')  # the tab is built when first opened


async def send_invite(user: User, email: str, role: str = 'Member') -> None:
    user.find(marker='invite-email').type(email)
    if role != 'Member':
        choose(user, 'invite-role', role)
    user.find('Send Invite').click()


async def accept_invitation(member: User, link: str, name: str = 'Grace Hopper') -> None:
    await member.open(urlsplit(link).path)
    await member.should_see('Join Acme Support')
    await member.should_see(f'Ada Admin ({ADMIN_EMAIL}) invited you to Acme Support')
    member.find('Your name').type(name)
    member.find('Password').type(MEMBER_PASSWORD)
    member.find('Accept invitation').click()
    await member.should_see(f'Signed in as {MEMBER_EMAIL}')


def follow_server_navigation(simulated: User) -> list[str]:
    """Do what a real browser does with the server's `open` message (`client.open`): load that page.

    The user simulation only records such messages; this makes the simulated browser follow them.
    """
    client = simulated.client
    assert client is not None
    opened: list[str] = []
    original_emit = client.outbox._emit

    async def emit(message: tuple) -> None:
        await original_emit(message)
        _, message_type, data = message
        if message_type == 'open':
            opened.append(data['path'])
            background_tasks.create(simulated.open(data['path']), name='follow open message')

    client.outbox._emit = emit
    return opened


def browser(simulated: User) -> User:
    """Route the next interactions through this user's own page.

    In a real browser every event carries its page's request (and so its session cookie); in the simulation,
    events fired from the test carry the request of whichever simulated page loaded last.
    """
    assert simulated.client is not None
    storage.request_contextvar.set(simulated.client.request)
    return simulated


def browser_event(user: User, marker: str, event: str, args: object = None) -> None:
    """Deliver `event` (with `args`, as a row template's `$emit` sends them) to the element marked `marker` the way
    a real browser's socket message arrives.

    Unlike `find().trigger()`, this goes through `Client.handle_event`, so the handler runs with the request its
    listener was registered under: a list rebuilt by someone else's action must still act as its own page's user.
    """
    (element,) = user.find(marker=marker).elements
    listeners = [listener for listener in element._event_listeners.values() if listener.type == event]
    assert listeners, f'{marker} does not listen for {event}'
    assert user.client is not None
    sent = [] if args is None else [json.dumps(args)]
    for listener in listeners:
        user.client.handle_event({'id': element.id, 'listener_id': listener.id, 'args': sent})


def member_event(user: User, event: str, args: object) -> None:
    """What a Team Members row's control sends: `hold_complete`, `hold_short`, `role`, `reset_link`."""
    browser_event(user, 'member-table', event, args)


def invitation_event(user: User, event: str, invitation_id: int) -> None:
    """What an Invitations row's button sends: `copy_link`, `resend`, `revoke`."""
    browser_event(user, 'invitation-table', event, invitation_id)


def rows(user: User, table: str) -> list[dict]:
    """The rows a table shows now (one page, read on the server); none while the table is not shown."""
    tables = user._gather_elements(kind=ui.table, marker=table)
    return list(tables.pop().rows) if tables else []


def choose_role(user: User, member_id: int, label: str) -> None:
    """Pick `label` in the role selector of a Team Members row (what its `change` sends); a dialog then asks."""
    value = next(value for value, option in ROLE_OPTIONS.items() if option == label)
    member_event(user, 'role', {'id': member_id, 'role': value})


async def confirm_role(user: User, title: str) -> None:
    """Confirm the role change dialog titled `title`."""
    await user.should_see(title)
    user.find(marker='confirm-role').click()


def choose(user: User, marker: str, label: str) -> None:
    """Pick an option of the select marked `marker` (what clicking the option in its popup does)."""
    (select,) = user.find(marker=marker).elements
    assert isinstance(select, ui.select) and isinstance(select.options, dict)
    assert user.client is not None
    with user.client:
        select.value = next(value for value, option in select.options.items() if option == label)


def member_id_from(user: User, email: str) -> int:
    """The id behind a Team Members row."""
    for row in rows(user, 'member-table'):
        if row['email'] == email:
            return row['id']
    raise AssertionError(f'no Team Members row for {email}')


def invitation_link(user: User) -> str:
    """The link shown in the newest `Invitation created` dialog (a closed one lingers until the browser says it has
    closed, which a simulated user never does; `elements` is a set, so the newest is the one with the highest id)."""
    link = max(user.find(kind=ui.input, marker='invite-link').elements, key=lambda element: element.id).value
    assert link, 'the dialog shows a link'
    return link


async def test_invite_accept_and_hold_to_remove(
    mail_env: SmtpServer, user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    await user.should_see('Invite User')
    await user.should_see('No pending invitations.')
    await send_invite(user, MEMBER_EMAIL)
    await user.should_see(f'Invitation sent to {MEMBER_EMAIL}', retries=50)
    (received,) = mail_env.wait_for(1)
    assert received.recipients == [MEMBER_EMAIL]
    assert received.subject == 'You are invited to join Acme Support on CX Toolbox'
    (link,) = received.links
    assert received.content_types == ['text/plain', 'text/html'] and link in received.html
    # The pending invitation: email, role, who invited, expiry, delivery status and its actions.
    await should_see_in_row(user, 'invitation-table', 1, 'email', MEMBER_EMAIL)
    await should_see_in_row(user, 'invitation-table', 1, 'status', 'Sent')
    for label in ('Member', 'Ada Admin', 'Copy link', 'Resend', 'Revoke'):
        await user.should_see(label)

    grace = create_user()
    await accept_invitation(grace, link)
    await grace.should_not_see('Team Members')  # built only when its tab is opened
    grace.find('User Management').click()
    await grace.should_see('Team Members')
    await grace.should_see('Ada Admin')
    await grace.should_not_see('Hold to Remove')  # a member removes nobody
    await grace.should_not_see('More actions')
    assert not any(row['admin_view'] or row['last_sign_in'] for row in rows(grace, 'member-table'))  # admins' columns
    await grace.should_not_see('Invite User')
    opened = follow_server_navigation(grace)

    # The admin's open page shows the new member without a reload, and the invitation left the list.
    await user.should_see('Grace Hopper')
    await user.should_see('No pending invitations.')
    grace_id = member_id_from(user, MEMBER_EMAIL)
    await should_see_in_row(user, 'member-table', grace_id, 'status', 'Active')
    await should_see_in_row(user, 'member-table', grace_id, 'role_label', 'Member')
    (own,) = [row for row in rows(user, 'member-table') if row['email'] == ADMIN_EMAIL]
    assert own['is_self'] and not own['manageable'], 'the own row says `You`, with no Hold to Remove'
    await user.should_see('You')

    # A plain click (a short press) removes nobody, and says how to remove.
    member_event(browser(user), 'hold_short', grace_id)
    await user.should_see('Hold for 1.5 s to remove Grace Hopper')  # a notification: announced
    await user.should_not_see(f'{MEMBER_EMAIL} removed')
    await user.should_see('Grace Hopper')
    assert opened == []

    # The browser reports a completed hold: the member is removed and their open page goes to /login at once.
    started = time.perf_counter()
    member_event(user, 'hold_complete', grace_id)
    await should_be_notified(user, f'{MEMBER_EMAIL} removed', also_watching=grace)
    await user.should_not_see(kind=ui.table, content='Grace Hopper')  # (the hint above still names her)
    await eventually(lambda: bool(grace.back_history) and grace.back_history[-1].startswith('/login'))
    elapsed = time.perf_counter() - started
    assert len(opened) == 1 and urlsplit(opened[0]).path == '/login'
    await grace.should_see('You were removed from Acme Support')
    await grace.should_see('Sign in')
    await grace.should_see('Forgot password?')
    print(f'hold completion → removed member on /login: {elapsed * 1000:.0f} ms (user simulation)')
    assert elapsed < 2.0  # generous for a busy CI machine; typically 0.1-0.4 s
    # Their old cookie opens nothing any more.
    await grace.open('/')
    await grace.should_see('Sign in')
    await grace.should_not_see('Team Members')


async def test_without_a_mail_server_the_link_is_offered(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    await user.should_see('No mail server is configured')
    await send_invite(user, MEMBER_EMAIL, role='Admin')
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    (role,) = user.find(marker='invite-role').elements
    assert isinstance(role, ui.select) and role.value == 'member', 'the next invitation starts as Member again'
    link = invitation_link(user)
    assert urlsplit(link).path.startswith('/invite/')
    user.find('Close').click()
    await should_see_in_row(user, 'invitation-table', 1, 'status', 'Not emailed')
    invitation_event(user, 'copy_link', 1)
    await user.should_see('Invitation link copied to the clipboard')

    invitation_event(user, 'revoke', 1)
    await user.should_see(f'Invitation for {MEMBER_EMAIL} revoked')
    await user.should_see('No pending invitations.')
    visitor = create_user()
    await visitor.open(urlsplit(link).path)
    await visitor.should_see('This invitation has been revoked')
    await visitor.should_not_see('Accept invitation')
    await visitor.open('/invite/not-a-real-token')
    await visitor.should_see('This invitation link is not valid')
    await visitor.should_not_see('Accept invitation')


async def test_an_invitation_for_a_member_or_a_bad_address_is_refused(user: User) -> None:
    await set_up_organization(user)
    await send_invite(user, 'not-an-address')
    await user.should_see('Enter a valid email address')
    user.find(marker='invite-email').clear()
    await send_invite(user, ADMIN_EMAIL.upper())
    await user.should_see(f'{ADMIN_EMAIL} is already a member of your team')
    await user.should_see('No pending invitations.')


async def test_accepted_member_can_be_promoted(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL)
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    link = invitation_link(user)
    user.find('Close').click()
    grace = create_user()
    await accept_invitation(grace, link)
    opened = follow_server_navigation(grace)
    await user.should_see('Grace Hopper')
    grace_id = member_id_from(user, MEMBER_EMAIL)
    choose_role(browser(user), grace_id, 'Admin')
    await user.should_see('Make Grace Hopper an admin?')
    await user.should_see('Grace Hopper will be able to reveal and rotate the API key')
    await asyncio.sleep(0.3)
    assert opened == [], 'nothing changes before the admin confirms'
    await confirm_role(user, 'Make Grace Hopper an admin?')
    await should_be_notified(user, f'{MEMBER_EMAIL} is now admin', also_watching=grace)
    # Her open page reloads with the admin tools, and says why.
    await eventually(lambda: opened == ['/?role=changed'])
    await should_be_notified(grace, 'Your role changed to Admin', also_watching=user)
    await grace.should_see(kind=ui.button, content='Generate API Key')  # the new page, as admin
    grace.find('User Management').click()
    await grace.should_see('Invite User')
    await grace.should_see('More actions')  # each other row's menu: Copy reset link, Hold to Remove
    assert all(row['admin_view'] and row['last_sign_in'] for row in rows(grace, 'member-table'))  # admins' columns


async def test_a_role_change_cancelled_in_its_dialog_changes_nothing(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL)
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    link = invitation_link(user)
    user.find('Close').click()
    grace = create_user()
    await accept_invitation(grace, link)
    opened = follow_server_navigation(grace)
    await user.should_see('Grace Hopper')
    grace_id = member_id_from(user, MEMBER_EMAIL)
    choose_role(browser(user), grace_id, 'Admin')
    await user.should_see('Make Grace Hopper an admin?')
    user.find('Cancel').click()
    await user.should_not_see('Make Grace Hopper an admin?')
    await asyncio.sleep(0.3)
    assert opened == []

    def stored_role() -> str:
        with read_scope() as session:
            return session.exec(select(Account.role).where(Account.email == MEMBER_EMAIL)).one()

    assert await asyncio.to_thread(stored_role) == Role.MEMBER
    await should_see_in_row(user, 'member-table', grace_id, 'role_label', 'Member')


async def test_removal_asks_for_the_password_when_it_was_entered_long_ago(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL)
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    link = invitation_link(user)
    user.find('Close').click()
    grace = create_user()
    await accept_invitation(grace, link)
    await user.should_see('Grace Hopper')
    grace_id = member_id_from(user, MEMBER_EMAIL)
    browser(user)
    await password_entered_minutes_ago(11)  # the admin signed in 11 minutes ago

    member_event(user, 'hold_complete', grace_id)
    await user.should_see('Confirm your password')
    browser(user).find('Cancel').click()
    await user.should_not_see('Confirm your password')
    await user.should_see('Grace Hopper')

    member_event(user, 'hold_complete', grace_id)
    await user.should_see('Confirm your password')
    browser(user).find(kind=ui.input, content='Password').type('not my password')
    user.find(kind=ui.button, content='Confirm').click()
    await user.should_see('Wrong password')
    user.find(kind=ui.input, content='Password').clear().type(PASSWORD)
    browser(user).find(kind=ui.button, content='Confirm').click()
    await user.should_see(f'{MEMBER_EMAIL} removed')
    await user.should_not_see('Grace Hopper')


async def test_a_removed_members_security_and_help_pages_go_to_login(
    user: User, create_user: Callable[[], User]
) -> None:
    """Every page that shows a signed-in person is closed when they are removed, not only the dashboard."""
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL)
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    link = invitation_link(user)
    user.find('Close').click()
    security = create_user()
    await accept_invitation(security, link)
    await security.open('/security')
    await security.should_see('Active sessions')
    help_page = create_user()
    await open_handoff(help_page, start_url(await in_database(lambda db: _start_session(db, MEMBER_EMAIL))))
    await help_page.open('/help/sidekick')
    await help_page.should_see(f'Signed in as {MEMBER_EMAIL}')
    opened = {'security': follow_server_navigation(security), 'help': follow_server_navigation(help_page)}

    await user.should_see('Grace Hopper')
    member_event(browser(user), 'hold_complete', member_id_from(user, MEMBER_EMAIL))
    await should_be_notified(user, f'{MEMBER_EMAIL} removed', also_watching=security)
    await eventually(lambda: all(opened.values()), 5)
    assert {name: [urlsplit(path).path for path in paths] for name, paths in opened.items()} == {
        'security': ['/login'],
        'help': ['/login'],
    }
    await security.should_see('You were removed from Acme Support')
    await help_page.should_see('You were removed from Acme Support')


def _start_session(db: Session, email: str) -> str:
    """A second browser's sign-in as `email`, made through the services as the sign-in page does."""
    member = db.exec(select(Account).where(Account.email == email)).one()
    return sessions.start(session=db, user=member, ip='192.0.2.8', user_agent='Second browser')


@pytest.fixture(params=['refused', 'silent', 'dropping'])
def broken_mail(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Settings pointing at a mail server that fails in one of three ways; returns the error users see."""
    if request.param == 'refused':
        port = smtp.free_port()
        smtp.point_settings_at(monkeypatch, '127.0.0.1', port, timeout=1)
        return f'Connection refused by the mail server 127.0.0.1:{port}'
    server = request.getfixturevalue(f'{request.param}_smtp_server')
    # Long enough to look at the page while the silent server keeps the send waiting, even on a busy machine.
    smtp.point_settings_at(monkeypatch, server.host, server.port, timeout=3)
    if request.param == 'silent':
        return f'The mail server 127.0.0.1:{server.port} did not answer within 3 s'
    return f'The mail server 127.0.0.1:{server.port} closed the connection'


async def test_a_failed_send_keeps_the_invitation(broken_mail: str, user: User) -> None:
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL)
    # While the mail server keeps us waiting the page works: the invitation is already listed and its link copies.
    await should_see_in_row(user, 'invitation-table', 1, 'email', MEMBER_EMAIL)
    if 'did not answer' in broken_mail:
        await should_see_in_row(user, 'invitation-table', 1, 'status', 'Sending…')
    invitation_event(user, 'copy_link', 1)
    await user.should_see('Invitation link copied to the clipboard')
    await user.should_see(f'The invitation for {MEMBER_EMAIL} is saved, but the email failed', retries=80)
    await user.should_see(broken_mail)
    await should_see_in_row(user, 'invitation-table', 1, 'status', 'Email failed')
    await should_see_in_row(user, 'invitation-table', 1, 'error', broken_mail)
    await user.should_see('Resend')


async def should_be_notified(user: User, text: str, *, also_watching: User) -> None:
    """`user` got a notification saying `text`.

    The simulation has one `ui.notify` for all simulated users (whoever's attributes were touched last), and the
    other person's page following a server-side navigation touches theirs: look in both records.
    """
    await eventually(lambda: any(page.notify.contains(text) for page in (user, also_watching)), 5)


async def should_see_in_row(user: User, table: str, row_id: int, field: str, text: str, *, attempts: int = 40) -> None:
    """`text` in the `field` of the row `row_id` of the table marked `table` (read afresh on every attempt)."""
    seen: object = None
    for _ in range(attempts):
        row = next((row for row in rows(user, table) if row['id'] == row_id), None)
        seen = row
        if row is not None and text in str(row.get(field) or ''):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f'expected {text!r} in {field!r} of row {row_id} of {table!r}, saw {seen}')


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait (without blocking the app) until `condition` holds."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise AssertionError('condition not met in time')
        await asyncio.sleep(0.005)
