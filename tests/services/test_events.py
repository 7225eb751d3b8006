"""Cross-process events: a committed change notifies every listener, a rolled-back one nobody."""

import asyncio
import socket

import psycopg
import pytest
from sqlalchemy import event

from models import Role, User
from services import events
from services.db import write_scope
from services.team import members
from tests.factories import acting, make_organization, make_user


def _team() -> tuple[User, User, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        admin = make_user(session, organization=organization)
        first = make_user(session, organization=organization, role=Role.MEMBER)
        second = make_user(session, organization=organization, role=Role.MEMBER)
        return admin, first, second


def _remove(admin: User, member: User, *, then_fail: bool = False) -> None:
    assert member.id is not None
    with write_scope() as session:
        members.remove_member(session=session, actor=acting(session, admin), member_id=member.id)
        if then_fail:
            raise RuntimeError('rolled back')


async def test_a_committed_removal_reaches_a_listener_and_a_rolled_back_one_does_not(pg_database: str) -> None:
    admin, kept, removed = await asyncio.to_thread(_team)
    received: asyncio.Queue[events.Event] = asyncio.Queue()
    listening = asyncio.Event()

    async def on_listening() -> None:
        listening.set()

    listener = asyncio.create_task(events.listen(pg_database, received.put, on_listening=on_listening))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        with pytest.raises(RuntimeError):
            await asyncio.to_thread(_remove, admin, kept, then_fail=True)
        await asyncio.to_thread(_remove, admin, removed)
        kinds = set()
        while len(kinds) < 2:
            event = await asyncio.wait_for(received.get(), 5)
            # Delivered in commit order: anything from the rolled-back removal would have come first.
            assert event.user_id == removed.id, event
            assert event.organization_id in {admin.organization_id, None}
            assert event.from_this_process
            kinds.add(event.kind)
        assert kinds == {events.EventKind.MEMBER_REMOVED, events.EventKind.SESSIONS_ENDED}
        await asyncio.sleep(0.3)
        assert received.empty()
    finally:
        listener.cancel()


async def test_the_listener_reconnects_after_its_connection_is_killed(pg_database: str) -> None:
    admin, _, removed = await asyncio.to_thread(_team)
    received: asyncio.Queue[events.Event] = asyncio.Queue()
    connects: asyncio.Queue[None] = asyncio.Queue()

    async def on_listening() -> None:
        connects.put_nowait(None)

    listener = asyncio.create_task(events.listen(pg_database, received.put, on_listening=on_listening))
    try:
        await asyncio.wait_for(connects.get(), 10)
        async with await psycopg.AsyncConnection.connect(events.driver_url(pg_database), autocommit=True) as admin_db:
            await admin_db.execute(
                'SELECT pg_terminate_backend(pid) FROM pg_stat_activity'
                " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        await asyncio.wait_for(connects.get(), 10)  # listening again
        await asyncio.to_thread(_remove, admin, removed)
        event = await asyncio.wait_for(received.get(), 5)
        assert event.user_id == removed.id
    finally:
        listener.cancel()


@pytest.mark.sqlite_only('what publishing does without PostgreSQL')
def test_publishing_on_sqlite_sends_nothing_and_changes_nothing(database: None) -> None:
    statements: list[str] = []
    with write_scope() as session:
        connection = session.connection()  # the transaction's own statements (BEGIN IMMEDIATE) come before
        event.listen(connection, 'before_cursor_execute', lambda *args: statements.append(args[2]))
        events.publish(session=session, kind=events.EventKind.TEAM_CHANGED, organization_id=1)
        assert not session.new and not session.dirty
    assert statements == [], 'publishing ran SQL on SQLite'


def test_a_payload_that_is_not_an_event_is_ignored() -> None:
    assert events.parse('{"kind": "team changed", "organization_id": 3, "user_id": null, "origin": "x"}') == (
        events.Event(kind=events.EventKind.TEAM_CHANGED, organization_id=3, user_id=None, origin='x')
    )
    for payload in ['', 'null', '[]', '{"kind": "nope"}', '{"kind": "team changed", "organization_id": "3"}']:
        assert events.parse(payload) is None


async def test_an_unreachable_database_is_logged_once_while_the_listener_retries(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, 'RETRY_FIRST', 0.05)
    monkeypatch.setattr(events, 'RETRY_MAX', 0.05)
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    events_seen: list[events.Event] = []

    async def on_event(event: events.Event) -> None:
        events_seen.append(event)

    listener = asyncio.create_task(events.listen(f'postgresql+psycopg://postgres@127.0.0.1:{port}/x', on_event))
    await asyncio.sleep(0.5)
    listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listener
    warnings = [record for record in caplog.records if record.name == 'services.events']
    assert len(warnings) == 1 and 'no connection to the database' in warnings[0].getMessage()
