"""User Management at scale and its rough edges: lazy tabs, paged and searched tables, live updates only where the
team is shown, Resend saying the earlier link died, an admin's reset link for a teammate, and a demoted admin."""

import asyncio
import dataclasses
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from nicegui import ui
from nicegui.client import Client
from nicegui.testing import User
from sqlmodel import Session, col, delete, select

from models import BrowserSession, Organization, Role, UserStatus
from models import User as Account
from models.base import stored_id
from services import events
from tests.ui.helpers import ADMIN_EMAIL, in_database
from tests.ui.test_team_flow import (
    MEMBER_EMAIL,
    accept_invitation,
    browser,
    browser_event,
    choose_role,
    confirm_role,
    eventually,
    follow_server_navigation,
    invitation_event,
    invitation_link,
    member_event,
    member_id_from,
    rows,
    send_invite,
    set_up_organization,
    should_be_notified,
)
from ui import open_pages
from ui.tabs.team import PAGE_SIZE


def add_people(count: int) -> Callable[[Session], None]:
    """`count` more active members of Acme Support, straight into the database (no bcrypt)."""

    def add(session: Session) -> None:
        acme = session.exec(select(Organization)).one()
        for number in range(count):
            session.add(
                Account(
                    organization_id=stored_id(acme),
                    email=f'person{number:03d}@example.com',
                    name=f'Person {number:03d}',
                    password_hash='not a real hash',
                    role=Role.MEMBER,
                    status=UserStatus.ACTIVE,
                )
            )

    return add


def page_request(user: User, table: str, page: int, sort_by: str | None = None, descending: bool = False) -> None:
    """What Quasar's table sends for a page or a sort (`request`, server-side pagination)."""
    pagination = {'page': page, 'rowsPerPage': PAGE_SIZE, 'sortBy': sort_by, 'descending': descending}
    browser_event(user, table, 'request', {'pagination': pagination, 'filter': None})


async def rows_become(user: User, table: str, condition: Callable[[list[dict]], bool]) -> list[dict]:
    shown: list[dict] = []

    def check() -> bool:
        nonlocal shown
        shown = rows(user, table)
        return condition(shown)

    try:
        await eventually(check, 5)
    except AssertionError:
        raise AssertionError(f'{table} shows {[row.get("email") for row in shown]}') from None
    return shown


async def test_nothing_is_built_for_a_tab_until_it_is_opened(user: User) -> None:
    await set_up_organization(user)  # opens User Management
    await user.open('/')
    await user.should_see('Step 1: Generate API Key')
    await user.should_not_see(marker='member-table')
    await user.should_not_see(marker='invite-email')
    await user.should_not_see(marker='activity-table')
    await user.should_not_see('Team Members')

    user.find('User Management').click()
    await user.should_see(marker='member-table')
    await user.should_not_see(marker='activity-table')
    user.find('Activity').click()
    await user.should_see(marker='activity-table')

    # A link may open a tab directly.
    await user.open('/?tab=team')
    await user.should_see('Team Members')
    await user.should_see('You')
    await user.should_not_see(marker='api-key')


async def test_members_are_paged_sorted_and_searched_on_the_server(user: User) -> None:
    await set_up_organization(user)
    await in_database(add_people(30))
    await user.open('/?tab=team')
    first = await rows_become(user, 'member-table', lambda shown: len(shown) == PAGE_SIZE)
    assert first[0]['email'] == ADMIN_EMAIL and first[0]['is_self']
    (table,) = user.find(kind=ui.table, marker='member-table').elements
    assert table.pagination['rowsNumber'] == 31 and table.pagination['rowsPerPage'] == 25

    page_request(browser(user), 'member-table', 2)
    second = await rows_become(user, 'member-table', lambda shown: len(shown) == 6)
    assert [row['email'] for row in second][-1] == 'person029@example.com'
    await user.should_see('Person 029')
    await user.should_not_see('Person 000')

    page_request(user, 'member-table', 1, sort_by='name', descending=True)
    await rows_become(user, 'member-table', lambda shown: shown[0]['email'] == 'person029@example.com')

    user.find(marker='member-search').type('PERSON01')
    found = await rows_become(user, 'member-table', lambda shown: len(shown) == 10)
    assert {row['email'] for row in found} == {f'person01{digit}@example.com' for digit in range(10)}
    assert table.pagination['page'] == 1 and table.pagination['rowsNumber'] == 10
    user.find(marker='member-search').clear().type('nobody like this')
    await rows_become(user, 'member-table', lambda shown: shown == [])


async def test_live_updates_reach_only_a_shown_team_tab(user: User) -> None:
    await set_up_organization(user)
    await rows_become(user, 'member-table', lambda shown: len(shown) == 1)
    (table,) = user.find(kind=ui.table, marker='member-table').elements
    user.find('Dashboard Settings').click()
    await in_database(add_people(2))
    open_pages.team_changed(None)
    await asyncio.sleep(0.5)
    assert len(table.rows) == 1, 'a hidden tab is not read again'
    user.find('User Management').click()
    await rows_become(user, 'member-table', lambda shown: len(shown) == 3)  # read when shown again


async def test_resend_and_a_new_invitation_say_the_earlier_link_died(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL)
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    first_link = invitation_link(user)
    user.find('Close').click()
    await rows_become(user, 'invitation-table', lambda shown: len(shown) == 1)

    invitation_event(user, 'resend', 1)
    await user.should_see(f'Invitation renewed for {MEMBER_EMAIL}')
    await user.should_see('The earlier link no longer works.')
    second_link = invitation_link(user)
    assert second_link != first_link
    user.find('Close').click()

    await send_invite(user, MEMBER_EMAIL)  # inviting the same address again renews it too
    await user.should_see(f'Invitation renewed for {MEMBER_EMAIL}')
    await user.should_see('The earlier link no longer works.')

    visitor = create_user()
    await visitor.open(urlsplit(first_link).path)
    await visitor.should_not_see('Accept invitation')


async def test_an_admin_copies_a_reset_link_for_a_member(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL)
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    link = invitation_link(user)
    user.find('Close').click()
    grace = create_user()
    await accept_invitation(grace, link)
    await user.should_see('Grace Hopper')
    await user.should_see('More actions')  # the row menu holds `Copy reset link`
    grace_id = member_id_from(user, MEMBER_EMAIL)
    own = next(row for row in rows(user, 'member-table') if row['is_self'])
    assert not own['manageable'], 'no reset link for oneself here'

    member_event(browser(user), 'reset_link', grace_id)
    await user.should_see('Password reset link for Grace Hopper')
    await user.should_see('It works once, for 1 hour')
    (field,) = user.find(kind=ui.input, marker='reset-link').elements
    reset_path = urlsplit(str(field.value)).path
    assert reset_path.startswith('/reset-password/')
    user.find(marker='copy-reset-link').click()
    await user.should_see('Reset link copied to the clipboard')

    visitor = create_user()
    await visitor.open(reset_path)
    await visitor.should_see('Choose a new password')


async def test_a_demoted_admin_is_told_and_sees_the_member_view(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    await send_invite(user, MEMBER_EMAIL, role='Admin')
    await user.should_see(f'Invitation created for {MEMBER_EMAIL}')
    link = invitation_link(user)
    user.find('Close').click()
    grace = create_user()
    await accept_invitation(grace, link)
    await grace.should_see(kind=ui.button, content='Generate API Key')  # an admin, on Dashboard Settings
    opened = follow_server_navigation(grace)
    await user.should_see('Grace Hopper')
    grace_id = member_id_from(user, MEMBER_EMAIL)

    choose_role(browser(user), grace_id, 'Member')
    await confirm_role(user, 'Make Grace Hopper a member?')
    await should_be_notified(user, f'{MEMBER_EMAIL} is now member', also_watching=grace)
    await eventually(lambda: opened == ['/?role=changed'])  # her team tab was never opened: still told
    await should_be_notified(grace, 'Your role changed to Member', also_watching=user)
    await grace.should_not_see(kind=ui.button, content='Generate API Key')
    await grace.should_not_see('Activity')
    stored = await in_database(lambda session: session.exec(select(Account).where(Account.email == MEMBER_EMAIL)).one())
    assert stored.role == Role.MEMBER


async def test_changes_made_in_another_process_reach_the_person_concerned(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role change or a removal announced by another process (PostgreSQL NOTIFY): the person's open page reloads
    saying their role changed, or goes to /login saying they were removed (the database decides which)."""
    await set_up_organization(user)
    assert user.client is not None
    opened: list[tuple[str, str]] = []
    monkeypatch.setattr(Client, 'open', lambda self, target, new_tab=False: opened.append((self.id, target)))
    admin = await in_database(lambda session: session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one())
    changed = events.Event(
        kind=events.EventKind.ROLE_CHANGED, organization_id=admin.organization_id, user_id=admin.id, origin='other'
    )
    await open_pages.apply_event(changed)
    client_id = user.client.id
    await eventually(lambda: (client_id, '/?role=changed') in opened)

    def remove(session: Session) -> None:
        stored = session.get_one(Account, admin.id)
        stored.status = UserStatus.REMOVED
        session.add(stored)
        session.exec(delete(BrowserSession).where(col(BrowserSession.user_id) == admin.id))

    await in_database(remove)
    opened.clear()
    removed = dataclasses.replace(changed, kind=events.EventKind.MEMBER_REMOVED)
    await open_pages.apply_event(removed)
    (target,) = [target for client_id, target in opened if target.startswith('/login')]
    query = parse_qs(urlsplit(target).query)
    assert open_pages.removed_notice(query['removed'][0], query['sig'][0]) == 'You were removed from Acme Support'
    assert open_pages.removed_notice('Evil Corp', query['sig'][0]) is None, 'nobody can make /login say anything else'


async def test_when_the_last_page_empties_the_new_last_page_is_shown(user: User) -> None:
    await set_up_organization(user)
    await in_database(add_people(25))  # 26 people: page 2 holds one
    await user.open('/?tab=team')
    await rows_become(user, 'member-table', lambda shown: len(shown) == PAGE_SIZE)
    page_request(browser(user), 'member-table', 2)
    await rows_become(user, 'member-table', lambda shown: [row['email'] for row in shown] == ['person024@example.com'])

    def remove_last(session: Session) -> None:
        last = session.exec(select(Account).where(Account.email == 'person024@example.com')).one()
        last.status = UserStatus.REMOVED
        session.add(last)

    await in_database(remove_last)
    open_pages.team_changed(None)
    shown = await rows_become(user, 'member-table', lambda shown: len(shown) == PAGE_SIZE)
    (table,) = user.find(kind=ui.table, marker='member-table').elements
    assert table.pagination['page'] == 1 and table.pagination['rowsNumber'] == 25
    assert shown[-1]['email'] == 'person023@example.com'
