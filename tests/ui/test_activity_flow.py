"""The Activity tab as an admin uses it: a page at a time with Older / Newer, filters by person and kind, a search
box, times in their own time zone, and `Export CSV` of everything the filters match."""

import asyncio
import csv
import io
import re
from datetime import UTC, datetime, timedelta

from nicegui import ui
from nicegui.testing import User
from sqlmodel import Session, select

from models import AuditAction, AuditEvent, Role
from models import User as Account
from services.errors import InvalidCredentials
from services.identity import auth
from tests.factories import sign_in as sign_in_through_services
from tests.ui.helpers import ADMIN_EMAIL, PASSWORD, button, in_database, set_up_organization

MEMBER_EMAIL = 'max@example.com'
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def readers_zone_is(user: User, zone: str) -> None:
    """What the browser answers when the page asks for its time zone."""
    user.javascript_rules[re.compile(r'.*resolvedOptions\(\)\.timeZone')] = lambda _: zone


def add_member(session: Session) -> None:
    admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
    session.add(
        Account(
            organization_id=admin.organization_id,
            email=MEMBER_EMAIL,
            name='Max Member',
            password_hash=auth.hash_password(PASSWORD),
            role=Role.MEMBER,
        )
    )


async def add_events(
    count: int, *, email: str = ADMIN_EMAIL, action: AuditAction = AuditAction.SUBDOMAINS_UPDATED
) -> None:
    """`count` events `change 0` … by `email`, a minute apart, oldest first, all before the organization's creation
    entry (which stays the newest)."""

    def add(session: Session) -> None:
        actor = session.exec(select(Account).where(Account.email == email)).one()
        for number in range(count):
            session.add(
                AuditEvent(
                    organization_id=actor.organization_id,
                    actor_id=actor.id,
                    actor_email=actor.email,
                    action=action,
                    target=f'change {number}',
                    ip=f'10.0.0.{number % 3}',
                    created_at=START + timedelta(minutes=number),
                )
            )

    await in_database(add)


def shown_rows(user: User) -> list[dict]:
    tables = user._gather_elements(kind=ui.table, marker='activity-table')  # built once the tab is opened
    return tables.pop().rows if tables else []


async def rows_become(user: User, expected: list[str], key: str = 'target') -> list[dict]:
    for _ in range(100):  # up to 5 s, like `should_see` (tests/conftest.py)
        rows = shown_rows(user)
        if [row[key] for row in rows] == expected:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f'Activity showed {[row[key] for row in shown_rows(user)]}, not {expected}')


def changes(*numbers: int) -> list[str]:
    return [f'change {number}' for number in numbers]


def choose(user: User, marker: str, value: object) -> None:
    """Pick an option of a select, as clicking it in its popup does."""
    (select_element,) = user.find(marker=marker).elements
    assert isinstance(select_element, ui.select)
    assert user.client is not None
    with user.client:
        select_element.value = value


def enabled(user: User, marker: str) -> bool:
    (element,) = user.find(marker=marker).elements
    assert isinstance(element, ui.button)
    return element.enabled


async def open_activity(user: User) -> None:
    user.find('Activity').click()
    await user.should_see(kind=ui.table, marker='activity-table')


async def test_older_and_newer_page_through_the_log(user: User) -> None:
    readers_zone_is(user, 'UTC')
    await set_up_organization(user)
    await add_events(60)
    await open_activity(user)
    # Newest first: the organization's creation, then change 59 … change 36.
    await rows_become(user, ['Acme Support', *changes(*range(59, 35, -1))])
    assert not enabled(user, 'activity-newer') and enabled(user, 'activity-older')
    await user.should_see('Saved the subdomains')

    button(user, 'Older').click()
    await rows_become(user, changes(*range(35, 10, -1)))
    assert enabled(user, 'activity-newer') and enabled(user, 'activity-older')

    button(user, 'Older').click()
    await rows_become(user, changes(*range(10, -1, -1)))
    assert enabled(user, 'activity-newer') and not enabled(user, 'activity-older')
    await user.should_see('11 entries: 2026-11-30 12:10 UTC back to 2026-11-30 12:00 UTC')

    button(user, 'Newer').click()
    await rows_become(user, changes(*range(35, 10, -1)))
    button(user, 'Newer').click()
    await rows_become(user, ['Acme Support', *changes(*range(59, 35, -1))])
    assert not enabled(user, 'activity-newer')

    choose(user, 'activity-per-page', 50)
    await rows_become(user, ['Acme Support', *changes(*range(59, 10, -1))])
    button(user, 'Older').click()
    await rows_become(user, changes(*range(10, -1, -1)))


async def test_filters_by_person_and_kind_and_search(user: User) -> None:
    readers_zone_is(user, 'UTC')
    await set_up_organization(user)
    await in_database(add_member)
    await add_events(3)
    await add_events(2, email=MEMBER_EMAIL, action=AuditAction.API_KEY_REVEALED)
    await open_activity(user)
    await rows_become(user, ['Acme Support', 'change 2', 'change 1', 'change 1', 'change 0', 'change 0'])

    (person,) = user.find(marker='activity-person').elements
    assert isinstance(person, ui.select)
    assert person.options == {ADMIN_EMAIL: f'Ada Admin ({ADMIN_EMAIL})', MEMBER_EMAIL: f'Max Member ({MEMBER_EMAIL})'}

    choose(user, 'activity-person', MEMBER_EMAIL)
    rows = await rows_become(user, ['Revealed the API key', 'Revealed the API key'], key='what')
    assert {row['who'] for row in rows} == {MEMBER_EMAIL}

    choose(user, 'activity-person', None)
    choose(user, 'activity-kind', AuditAction.SUBDOMAINS_UPDATED.value)
    await rows_become(user, ['change 2', 'change 1', 'change 0'])

    choose(user, 'activity-kind', None)
    user.find(marker='activity-search').type('10.0.0.1')
    await rows_become(user, ['change 1', 'change 1'])
    user.find(marker='activity-search').clear().type('created the')  # the words the tab shows
    await rows_become(user, ['Created the organization'], key='what')
    user.find(marker='activity-search').clear().type('no such thing')
    await rows_become(user, [])
    await user.should_see('No entries match these filters.')
    user.find(marker='activity-search').clear()
    await rows_become(user, ['Acme Support', 'change 2', 'change 1', 'change 1', 'change 0', 'change 0'])
    await user.should_not_see('No entries match these filters.')


async def test_times_are_shown_in_the_readers_time_zone(user: User) -> None:
    readers_zone_is(user, 'America/New_York')
    await set_up_organization(user)
    await add_events(1)
    await open_activity(user)
    await user.should_see('Times in America/New_York')
    rows = await rows_become(user, ['Acme Support', 'change 0'])
    assert rows[1]['when'] == '2026-11-30 07:00 EST'  # 12:00 UTC; the exact time, shown on hover and focus
    assert rows[0]['ago'] in {'just now', '1 min ago'}  # what the cell says
    assert re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d EST', rows[0]['when'])


async def test_times_fall_back_to_utc_when_the_browser_does_not_say(user: User) -> None:
    readers_zone_is(user, 'Nowhere/Special')
    await set_up_organization(user)
    await add_events(1)
    await open_activity(user)
    rows = await rows_become(user, ['Acme Support', 'change 0'])
    assert rows[1]['when'] == '2026-11-30 12:00 UTC'
    await user.should_see('Times in UTC')


async def test_export_csv_downloads_every_matching_entry_not_just_the_page(user: User) -> None:
    readers_zone_is(user, 'Europe/Berlin')
    await set_up_organization(user)
    await in_database(add_member)
    await add_events(40)
    await add_events(1, email=MEMBER_EMAIL, action=AuditAction.API_KEY_ROTATED)
    await open_activity(user)
    await user.should_see('Times in Europe/Berlin')
    choose(user, 'activity-kind', AuditAction.SUBDOMAINS_UPDATED.value)
    await rows_become(user, changes(*range(39, 14, -1)))  # one page of 25 shown

    button(user, 'Export CSV').click()
    response = await user.download.next(timeout=5)
    text = response.content.decode('utf-8-sig')
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ['When (Europe/Berlin)', 'Who', 'What', 'Target', 'Client IP']
    assert len(rows) == 1 + 40  # all 40 matching entries, not the 25 on screen; not the member's rotation
    assert rows[1] == ['2026-11-30 13:39', ADMIN_EMAIL, 'Saved the subdomains', 'change 39', '10.0.0.0']
    assert rows[-1] == ['2026-11-30 13:00', ADMIN_EMAIL, 'Saved the subdomains', 'change 0', '10.0.0.0']
    await user.should_see('Exported 40 entries.')

    choose(user, 'activity-kind', None)
    user.find(marker='activity-search').type('rotated')
    await rows_become(user, ['Rotated the API key'], key='what')
    button(user, 'Export CSV').click()
    response = await user.download.next(timeout=5)
    rows = list(csv.reader(io.StringIO(response.content.decode('utf-8-sig'))))
    assert [row[1:3] for row in rows[1:]] == [[MEMBER_EMAIL, 'Rotated the API key']]


async def test_a_members_failed_sign_in_shows_in_activity(user: User) -> None:
    readers_zone_is(user, 'UTC')
    await set_up_organization(user)
    await in_database(add_member)

    def fail() -> None:
        try:
            sign_in_through_services(MEMBER_EMAIL, 'not the password', ip='198.51.100.4')
        except InvalidCredentials:
            return
        raise AssertionError('a wrong password signed in')

    await asyncio.to_thread(fail)
    await open_activity(user)
    rows = await rows_become(user, ['Failed sign-in', 'Created the organization'], key='what')
    assert (rows[0]['who'], rows[0]['target'], rows[0]['ip']) == (MEMBER_EMAIL, MEMBER_EMAIL, '198.51.100.4')


async def test_an_admin_demoted_meanwhile_is_refused_the_next_page(user: User) -> None:
    readers_zone_is(user, 'UTC')
    await set_up_organization(user)
    await add_events(30)
    await open_activity(user)
    await rows_become(user, ['Acme Support', *changes(*range(29, 5, -1))])

    def demote(session: Session) -> None:
        admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
        admin.role = Role.MEMBER
        session.add(admin)

    await in_database(demote)
    button(user, 'Older').click()
    await user.should_see('Only admins can do that.')
    assert [row['target'] for row in shown_rows(user)][:1] == ['Acme Support']  # nothing older was shown


async def test_a_page_opened_on_the_activity_tab_shows_the_newest_entries(user: User) -> None:
    readers_zone_is(user, 'UTC')
    await set_up_organization(user)
    await add_events(2)
    await user.open('/?tab=activity')
    await rows_become(user, ['Acme Support', 'change 1', 'change 0'])
    await user.should_see('Times in UTC')
    await user.should_see('3 entries, the newest: ')
