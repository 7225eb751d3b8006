"""The Activity tab's log: the admin's own organization only, newest first, a page at a time after a cursor, narrowed
by person, kind and search text, exported as CSV; members may not read it; the index serves every query."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from models import AuditAction, AuditEvent, Role, User
from services import audit
from services.audit import ActivityFilters, ActivityPage
from services.db import get_engine, read_scope, write_scope
from services.errors import InvalidCredentials, PermissionDenied, ValidationFailed
from tests.factories import make_organization, make_user, sign_in

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def people(database: None) -> dict[str, User]:
    with write_scope() as session:
        acme = make_organization(session, name='Acme')
        return {
            'admin': make_user(session, organization=acme, role=Role.ADMIN, email='ada@acme.example'),
            'member': make_user(session, organization=acme, role=Role.MEMBER, email='max@acme.example'),
            'outsider': make_user(session, organization=make_organization(session, name='Other Co')),
        }


def log(
    actor: User,
    target: str,
    *,
    action: AuditAction = AuditAction.SUBDOMAINS_UPDATED,
    at: datetime | None = None,
    ip: str | None = None,
) -> None:
    with write_scope() as session:
        recorded = audit.record_event(
            session=session, organization_id=actor.organization_id, actor=actor, action=action, target=target, ip=ip
        )
        if at is not None:
            recorded.created_at = at


def log_many(actor: User, count: int, *, same_time: bool = False) -> None:
    """`count` events `change 0` … `change <count-1>`, a minute apart (or all in one microsecond), oldest first."""
    with write_scope() as session:
        for number in range(count):
            session.add(
                AuditEvent(
                    organization_id=actor.organization_id,
                    actor_id=actor.id,
                    actor_email=actor.email,
                    action=AuditAction.SUBDOMAINS_UPDATED,
                    target=f'change {number}',
                    created_at=START if same_time else START + timedelta(minutes=number),
                )
            )


def page(actor: User, **kwargs: Any) -> ActivityPage:
    with read_scope() as session:
        return audit.activity_page(session=session, actor=actor, **kwargs)


def targets(shown: ActivityPage) -> list[str | None]:
    return [event.target for event in shown.events]


def changes(*numbers: int) -> list[str | None]:
    return [f'change {number}' for number in numbers]


def test_an_admin_reads_their_organizations_events_newest_first(people: dict[str, User]) -> None:
    for target in ('first', 'second', 'third'):
        log(people['admin'], target)
    log(people['outsider'], 'not for Acme')
    with read_scope() as session:
        events = audit.activity_page(session=session, actor=people['admin']).events
    assert [event.target for event in events] == ['third', 'second', 'first']
    assert {event.actor_email for event in events} == {people['admin'].email}


def test_the_log_shows_only_the_newest_events_up_to_the_limit(people: dict[str, User]) -> None:
    for number in range(5):
        log(people['admin'], f'change {number}')
    with read_scope() as session:
        events = audit.activity_page(session=session, actor=people['admin'], size=2).events
    assert [event.target for event in events] == ['change 4', 'change 3']


def test_members_cannot_read_the_log(people: dict[str, User]) -> None:
    log(people['admin'], 'first')
    with pytest.raises(PermissionDenied, match=r'Only admins can do that\.'), read_scope() as session:
        audit.activity_page(session=session, actor=people['member'])


@pytest.mark.parametrize('reading', ['page', 'people', 'export'])
def test_members_cannot_page_list_people_or_export(people: dict[str, User], reading: str) -> None:
    log(people['admin'], 'first')
    with pytest.raises(PermissionDenied, match=r'Only admins can do that\.'), read_scope() as session:
        if reading == 'page':
            audit.activity_page(session=session, actor=people['member'])
        elif reading == 'people':
            audit.people(session=session, actor=people['member'])
        else:
            audit.export_csv(session=session, actor=people['member'])


def test_an_admin_demoted_a_moment_ago_is_refused(people: dict[str, User]) -> None:
    admin = people['admin']
    with write_scope() as session:
        stored = session.get_one(User, admin.id)
        stored.role = Role.MEMBER
        session.add(stored)
    with pytest.raises(PermissionDenied), read_scope() as session:
        audit.activity_page(session=session, actor=admin)  # the page still thinks Ada is an admin


def test_older_and_newer_walk_the_pages_without_gaps_or_repeats(people: dict[str, User]) -> None:
    admin = people['admin']
    log_many(admin, 60)
    log_many(people['outsider'], 30)

    first = page(admin, size=25)
    assert targets(first) == changes(*range(59, 34, -1))
    assert (first.has_newer, first.has_older) == (False, True)

    second = page(admin, size=25, older_than=first.oldest)
    assert targets(second) == changes(*range(34, 9, -1))
    assert (second.has_newer, second.has_older) == (True, True)

    last = page(admin, size=25, older_than=second.oldest)
    assert targets(last) == changes(*range(9, -1, -1))
    assert (last.has_newer, last.has_older) == (True, False)

    back = page(admin, size=25, newer_than=last.newest)
    assert targets(back) == targets(second)
    assert (back.has_newer, back.has_older) == (True, True)

    top = page(admin, size=25, newer_than=back.newest)
    assert targets(top) == targets(first)
    assert (top.has_newer, top.has_older) == (False, True)


def test_a_log_of_exactly_two_pages_says_there_is_nothing_older_on_the_second(people: dict[str, User]) -> None:
    admin = people['admin']
    log_many(admin, 50)
    first = page(admin, size=25)
    second = page(admin, size=25, older_than=first.oldest)
    assert len(second.events) == 25
    assert second.has_older is False
    assert page(admin, size=50).has_older is False


def test_newer_near_the_top_shows_the_full_newest_page(people: dict[str, User]) -> None:
    """Newer shows the events just above the page; when fewer than a page remain above it (an event was added while
    the admin read further down), it shows the newest page, full, with nothing newer."""
    admin = people['admin']
    log_many(admin, 30)
    first = page(admin, size=25)
    second = page(admin, size=25, older_than=first.oldest)
    log(admin, 'while reading page two', at=START + timedelta(days=1))
    up = page(admin, size=25, newer_than=second.newest)
    assert targets(up) == changes(*range(29, 4, -1))
    assert (up.has_newer, up.has_older) == (True, True)
    top = page(admin, size=25, newer_than=up.newest)
    assert targets(top) == ['while reading page two', *changes(*range(29, 5, -1))]
    assert (top.has_newer, top.has_older) == (False, True)


def test_events_of_the_same_microsecond_are_paged_by_id(people: dict[str, User]) -> None:
    admin = people['admin']
    log_many(admin, 7, same_time=True)
    seen: list[str | None] = []
    shown = page(admin, size=3)
    seen += targets(shown)
    while shown.has_older:
        shown = page(admin, size=3, older_than=shown.oldest)
        seen += targets(shown)
    assert seen == changes(*range(6, -1, -1))


def test_an_empty_log_is_one_empty_page(people: dict[str, User]) -> None:
    shown = page(people['admin'])
    assert shown.events == [] and not shown.has_older and not shown.has_newer
    assert shown.newest is None and shown.oldest is None


def test_filters_by_person_and_kind(people: dict[str, User]) -> None:
    admin, member = people['admin'], people['member']
    log(admin, 'acme', action=AuditAction.SUBDOMAINS_UPDATED)
    log(member, 'key', action=AuditAction.API_KEY_REVEALED)
    log(admin, 'key', action=AuditAction.API_KEY_ROTATED)
    log(member, 'again', action=AuditAction.SUBDOMAINS_UPDATED)
    log(people['outsider'], 'elsewhere', action=AuditAction.SUBDOMAINS_UPDATED)

    by_member = page(admin, filters=ActivityFilters(person=member.email))
    assert targets(by_member) == ['again', 'key']
    subdomains = page(admin, filters=ActivityFilters(action=AuditAction.SUBDOMAINS_UPDATED))
    assert targets(subdomains) == ['again', 'acme']
    both = page(admin, filters=ActivityFilters(person=member.email.upper(), action=AuditAction.API_KEY_REVEALED))
    assert [(event.actor_email, event.action) for event in both.events] == [(member.email, 'api_key.revealed')]
    outsider = page(admin, filters=ActivityFilters(person=people['outsider'].email))
    assert outsider.events == []  # another organization's person shows nothing, not their events


def test_search_finds_target_email_address_and_plain_words(people: dict[str, User]) -> None:
    admin, member = people['admin'], people['member']
    log(admin, 'newcomer@acme.example', action=AuditAction.INVITATION_SENT, ip='10.0.0.7')
    log(member, 'support', action=AuditAction.SUBDOMAINS_UPDATED, ip='192.168.1.20')
    log(admin, 'sk-…abcd', action=AuditAction.API_KEY_ROTATED, ip='10.0.0.7')
    log(people['outsider'], 'newcomer@acme.example', ip='10.0.0.7')

    def found(text: str) -> list[str | None]:
        return targets(page(admin, filters=ActivityFilters(search=text)))

    assert found('NEWCOMER') == ['newcomer@acme.example']
    assert found('max@') == ['support']  # who did it
    assert found('10.0.0.7') == ['sk-…abcd', 'newcomer@acme.example']
    assert found('rotated the') == ['sk-…abcd']  # the words the tab shows
    assert found('  192.168.1.20  ') == ['support']
    assert found('nothing like this') == []


def test_search_text_is_matched_literally(people: dict[str, User]) -> None:
    admin = people['admin']
    log(admin, '100% done')
    log(admin, 'a_b')
    log(admin, 'axb')
    assert targets(page(admin, filters=ActivityFilters(search='%'))) == ['100% done']
    assert targets(page(admin, filters=ActivityFilters(search='a_b'))) == ['a_b']


def test_filters_and_pages_work_together(people: dict[str, User]) -> None:
    admin, member = people['admin'], people['member']
    with write_scope() as session:
        for number in range(40):
            who = member if number % 2 else admin
            session.add(
                AuditEvent(
                    organization_id=admin.organization_id,
                    actor_id=who.id,
                    actor_email=who.email,
                    action=AuditAction.SUBDOMAINS_UPDATED,
                    target=f'change {number}',
                    created_at=START + timedelta(minutes=number),
                )
            )
    only_member = ActivityFilters(person=member.email)
    first = page(admin, filters=only_member, size=15)
    second = page(admin, filters=only_member, size=15, older_than=first.oldest)
    assert targets(first) == changes(*range(39, 9, -2))
    assert targets(second) == changes(*range(9, 0, -2))
    assert (second.has_newer, second.has_older) == (True, False)
    assert targets(page(admin, filters=only_member, size=15, newer_than=second.newest)) == targets(first)


def test_bad_filters_are_told_at_their_field(people: dict[str, User]) -> None:
    with pytest.raises(ValidationFailed, match='at most 100') as too_long:
        page(people['admin'], filters=ActivityFilters(search='x' * 101))
    assert too_long.value.field == 'search'
    with pytest.raises(ValidationFailed, match='from the list') as unknown:
        page(people['admin'], filters=ActivityFilters(action='api_key.stolen'))
    assert unknown.value.field == 'action'
    for size in (0, 201):
        with pytest.raises(ValidationFailed, match='from 1 to 200') as bad_size:
            page(people['admin'], size=size)
        assert bad_size.value.field == 'size'


def test_people_lists_the_organization_only(people: dict[str, User]) -> None:
    with read_scope() as session:
        listed = audit.people(session=session, actor=people['admin'])
    assert {person.email for person in listed} == {people['admin'].email, people['member'].email}


def test_a_members_failed_sign_in_appears_in_the_organizations_activity(people: dict[str, User]) -> None:
    with pytest.raises(InvalidCredentials):
        sign_in(people['member'].email, 'not the password', ip='203.0.113.9')
    with pytest.raises(InvalidCredentials):
        sign_in(people['outsider'].email, 'not the password')
    with pytest.raises(InvalidCredentials):
        sign_in('nobody@acme.example', 'not the password')
    failed = page(people['admin'], filters=ActivityFilters(action=AuditAction.LOGIN_FAILED)).events
    assert [(event.actor_email, event.target, event.ip) for event in failed] == [
        (people['member'].email, people['member'].email, '203.0.113.9')
    ]
    assert audit.action_label(failed[0].action) == 'Failed sign-in'
    shown = page(people['admin'], filters=ActivityFilters(person=people['member'].email, search='failed sign-in'))
    assert len(shown.events) == 1


def export(actor: User, filters: ActivityFilters | None = None, **kwargs: Any) -> tuple[list[list[str]], bool]:
    with read_scope() as session:
        result = audit.export_csv(session=session, actor=actor, filters=filters, **kwargs)
    rows = list(csv.reader(io.StringIO(result.text)))
    assert result.rows == len(rows) - 1
    return rows, result.truncated


def test_the_csv_has_a_header_plain_words_and_times_in_the_readers_zone(people: dict[str, User]) -> None:
    admin = people['admin']
    log(admin, 'acme, support', at=datetime(2026, 12, 1, 13, 3, 59, tzinfo=UTC), ip='10.0.0.1')
    log(admin, 'key', action=AuditAction.API_KEY_ROTATED, at=datetime(2026, 12, 1, 14, 5, tzinfo=UTC))
    rows, truncated = export(admin, zone=ZoneInfo('Europe/Berlin'))
    assert rows == [
        ['When (Europe/Berlin)', 'Who', 'What', 'Target', 'Client IP'],
        ['2026-12-01 15:05', admin.email, 'Rotated the API key', 'key', ''],
        ['2026-12-01 14:03', admin.email, 'Saved the subdomains', 'acme, support', '10.0.0.1'],
    ]
    assert not truncated
    assert export(admin)[0][1][0] == '2026-12-01 14:05'  # UTC when the reader's zone is unknown
    assert export(admin)[0][0][0] == 'When (UTC)'


def test_the_csv_holds_every_matching_row_not_just_one_page(
    people: dict[str, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = people['admin']
    monkeypatch.setattr(audit, 'EXPORT_BATCH', 4)  # several batches from a small log
    log_many(admin, 30)
    log(people['member'], 'by max', at=START + timedelta(days=1))
    log_many(people['outsider'], 5)
    rows, truncated = export(admin)
    assert [row[3] for row in rows[1:]] == ['by max', *changes(*range(29, -1, -1))]
    assert not truncated
    rows, _ = export(admin, ActivityFilters(person=people['member'].email))
    assert [row[3] for row in rows[1:]] == ['by max']
    rows, _ = export(admin, ActivityFilters(search='change 2'))
    assert [row[3] for row in rows[1:]] == changes(29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 2)


def test_the_csv_stops_at_its_limit_and_says_so(people: dict[str, User], monkeypatch: pytest.MonkeyPatch) -> None:
    admin = people['admin']
    monkeypatch.setattr(audit, 'EXPORT_BATCH', 4)
    monkeypatch.setattr(audit, 'EXPORT_LIMIT', 10)
    log_many(admin, 12)
    rows, truncated = export(admin)
    assert [row[3] for row in rows[1:]] == changes(*range(11, 1, -1))
    assert truncated
    rows, truncated = export(admin, ActivityFilters(search='change 1'))
    assert len(rows) == 4 and not truncated  # change 11, 10, 1


def test_csv_cells_never_become_spreadsheet_formulas(people: dict[str, User]) -> None:
    log(people['admin'], '=HYPERLINK("http://evil.example")')
    rows, _ = export(people['admin'])
    assert rows[1][3] == '\'=HYPERLINK("http://evil.example")'


def test_times_are_shown_in_the_readers_time_zone() -> None:
    moment = datetime(2026, 12, 1, 14, 3, 30, tzinfo=UTC)
    assert audit.format_time(moment, ZoneInfo('America/New_York')) == '2026-12-01 09:03'
    assert audit.format_time(moment, UTC) == '2026-12-01 14:03'


# --- the index serves every query -----------------------------------------------------------------------------------


@pytest.fixture
def statements() -> Iterator[list[tuple[str, Any]]]:
    """The SQL the services run against audit_event while the test reads, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith('SELECT') and 'FROM audit_event' in statement:
            seen.append((statement, parameters))

    engine = get_engine()
    event.listen(engine, 'before_cursor_execute', remember)
    yield seen
    event.remove(engine, 'before_cursor_execute', remember)


def query_plan(statement: str, parameters: Any) -> list[str]:
    connection = get_engine().raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f'EXPLAIN QUERY PLAN {statement}', parameters)
        return [row[3] for row in cursor.fetchall()]
    finally:
        connection.close()


@pytest.mark.sqlite_only('EXPLAIN QUERY PLAN is SQLite syntax')
def test_every_activity_query_walks_an_organization_index_without_sorting(
    people: dict[str, User], statements: list[tuple[str, Any]]
) -> None:
    admin = people['admin']
    log_many(admin, 60)
    log_many(people['outsider'], 60)
    first = page(admin)
    page(admin, newer_than=page(admin, older_than=first.oldest).newest)
    for filters in (
        ActivityFilters(person=people['member'].email),
        ActivityFilters(action=AuditAction.API_KEY_ROTATED),
        ActivityFilters(search='10.0.0.7'),
        ActivityFilters(person=admin.email, action=AuditAction.SUBDOMAINS_UPDATED, search='change'),
    ):
        page(admin, filters=filters, size=50)
        page(admin, filters=filters, older_than=first.oldest)
        page(admin, filters=filters, newer_than=first.oldest)
        with read_scope() as session:
            audit.export_csv(session=session, actor=admin, filters=filters)
    assert len(statements) >= 14
    for statement, parameters in statements:
        plan = query_plan(statement, parameters)
        # One of the organization's three: by time, by kind then time, by person then time (never a table scan).
        assert any('USING INDEX ix_audit_event_organization_' in step for step in plan), (statement, plan)
        assert not any('TEMP B-TREE' in step for step in plan), (statement, plan)
