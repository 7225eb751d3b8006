"""The key's traffic: widget API requests counted per key and hour in memory, written by one upsert per flush that
adds to the stored hour rows, pruned after 90 days, read back per organization by admins only."""

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlmodel import select

from api import create_api_app
from models import ApiKey, KeyTraffic, Organization, Role, User
from models.base import stored_id, utcnow
from services.db import get_engine, read_scope, write_scope
from services.errors import PermissionDenied
from services.keys import api_keys, key_traffic
from tests.factories import acting, make_organization, make_user

ENDPOINT = '/api/v1/organization'
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def fresh_counters() -> Iterator[None]:
    """Counts are process memory: start each test without another test's, and leave no flusher running."""
    key_traffic.stop_flushing_now()
    key_traffic.discard_pending()
    yield
    key_traffic.stop_flushing_now()
    key_traffic.discard_pending()


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


@pytest.fixture
def client(database: None) -> FastAPI:
    return create_api_app()


def generate(actor: User) -> str:
    with write_scope() as session:
        return api_keys.generate_key(session=session, actor=actor)


def rotate(actor: User, grace: timedelta = timedelta(0)) -> str:
    with write_scope() as session:
        return api_keys.rotate_key(session=session, actor=acting(session, actor), grace=grace)


def key_id(plaintext: str) -> int:
    with read_scope() as session:
        key = session.exec(select(ApiKey).where(ApiKey.key_hash == api_keys.hash_key(plaintext))).one()
        return stored_id(key)


def stored_rows() -> dict[int, tuple[int, int]]:
    """key id -> (accepted, refused), summed over the stored hours."""
    totals: dict[int, tuple[int, int]] = {}
    with read_scope() as session:
        for row in session.exec(select(KeyTraffic)):
            accepted, refused = totals.get(row.key_id, (0, 0))
            totals[row.key_id] = (accepted + row.accepted, refused + row.refused)
    return totals


def call(app: FastAPI, key: str, times: int = 1) -> list[int]:
    """Real requests to the widget API app (from a synchronous test, so the test's own database work needs no
    thread)."""

    async def requests() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url='http://test') as client:
            headers = {'Authorization': f'Bearer {key}'}
            return [(await client.get(ENDPOINT, headers=headers)).status_code for _ in range(times)]

    return asyncio.run(requests())


class StatementLog:
    """Every SQL statement the engine runs while it is attached."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        with self.lock:
            self.statements.append(statement)

    def matching(self, fragment: str) -> list[str]:
        return [statement for statement in self.statements if fragment in statement.lower()]


@pytest.fixture
def statements(database: None) -> Iterator[StatementLog]:
    log = StatementLog()
    event.listen(get_engine(), 'before_cursor_execute', log)
    yield log
    event.remove(get_engine(), 'before_cursor_execute', log)


def test_requests_are_counted_in_memory_and_written_by_one_upsert(
    client: FastAPI, admin: User, statements: StatementLog
) -> None:
    old = generate(admin)
    assert call(client, old, 3) == [200] * 3
    new = rotate(admin)  # immediately: the old key is refused from now on
    assert call(client, new, 2) == [200] * 2
    assert call(client, old, 4) == [401] * 4
    assert call(client, 'cxt_' + 'x' * 40, 5) == [401] * 5  # unknown: no key to count it against
    assert statements.matching('key_traffic') == []  # the request path wrote nothing
    assert stored_rows() == {}

    assert key_traffic.flush() == 2
    assert stored_rows() == {key_id(old): (3, 4), key_id(new): (2, 0)}
    assert len(statements.matching('insert into key_traffic')) == 1
    assert key_traffic.pending() == {}


def test_a_second_flush_adds_to_the_stored_hour(client: FastAPI, admin: User) -> None:
    key = generate(admin)
    call(client, key, 2)
    key_traffic.flush()
    call(client, key, 3)
    key_traffic.flush()  # as another process flushing its own increments would
    with read_scope() as session:
        rows = session.exec(select(KeyTraffic)).all()
    assert [(row.key_id, row.accepted, row.refused) for row in rows] == [(key_id(key), 5, 0)]
    assert key_traffic.flush() == 0  # nothing new: nothing written


def test_counts_of_a_key_that_is_gone_are_dropped_and_the_rest_written(admin: User) -> None:
    key = key_id(generate(admin))
    key_traffic.count(key, True, utcnow())
    key_traffic.count(key + 1000, True, utcnow())  # no such key (its organization was deleted since)
    assert key_traffic.flush() == 1
    assert stored_rows() == {key: (1, 0)}


def test_a_failed_flush_keeps_the_counts_for_the_next(admin: User) -> None:
    key = key_id(generate(admin))
    key_traffic.count(key, True, utcnow())
    key_traffic.count(key, False, utcnow())
    with write_scope() as session:  # the table is gone for a moment: the flush fails
        session.connection().exec_driver_sql('ALTER TABLE key_traffic RENAME TO key_traffic_away')
    with pytest.raises(Exception, match='key_traffic'):
        key_traffic.flush()
    with write_scope() as session:
        session.connection().exec_driver_sql('ALTER TABLE key_traffic_away RENAME TO key_traffic')
    assert key_traffic.flush() == 1
    assert stored_rows() == {key: (1, 1)}


COUNTING_PROCESS = """
import sys
from models.base import utcnow
from services import config, db
from services.keys import key_traffic
settings = config.load_settings()
config.configure(settings)
db.init_database(settings.resolved_database_url)
key_id, accepted = int(sys.argv[1]), int(sys.argv[2])
for _ in range(accepted):
    key_traffic.count(key_id, True, utcnow())
key_traffic.count(key_id, False, utcnow())
key_traffic.flush()
"""


def test_several_processes_each_flush_their_own_increments(admin: User) -> None:
    key = key_id(generate(admin))
    environment = {**os.environ, 'PYTHONPATH': str(REPO_ROOT)}
    processes = [
        subprocess.Popen([sys.executable, '-c', COUNTING_PROCESS, str(key), str(accepted)], env=environment)
        for accepted in (40, 2)
    ]
    key_traffic.count(key, True, utcnow())  # and this process too
    key_traffic.flush()
    assert [process.wait(timeout=60) for process in processes] == [0, 0]
    assert stored_rows() == {key: (43, 2)}


def test_rows_older_than_90_days_are_pruned(admin: User, monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_id(generate(admin))
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    with write_scope() as session:
        for age in (timedelta(days=91), timedelta(days=89), timedelta(hours=1)):
            session.add(KeyTraffic(key_id=key, hour=now - age, accepted=1, refused=0))
    monkeypatch.setattr(key_traffic, '_last_prune', None)  # the first flush of a process prunes
    key_traffic.flush()
    with read_scope() as session:
        hours = sorted(row.hour for row in session.exec(select(KeyTraffic)))
    assert hours == [now - timedelta(days=89), now - timedelta(hours=1)]


def test_the_background_flusher_writes_at_shutdown(admin: User) -> None:
    key = key_id(generate(admin))
    key_traffic.start_flushing(interval=3600)
    key_traffic.start_flushing(interval=3600)  # once per process
    key_traffic.count(key, True, utcnow())
    key_traffic.stop_flushing_now()
    assert stored_rows() == {key: (1, 0)}


def test_the_chart_data_separates_current_and_old_keys(client: FastAPI, admin: User) -> None:
    old = generate(admin)
    call(client, old, 2)
    key_traffic.flush()
    new = rotate(admin, grace=timedelta(hours=1))
    call(client, old, 1)  # still accepted in its grace window, not flushed yet: shown all the same
    call(client, new, 3)
    with read_scope() as session:
        by_hour = key_traffic.traffic(session=session, actor=admin, granularity='hour')
        by_day = key_traffic.traffic(session=session, actor=admin, granularity='day')
        last_hour = key_traffic.requests_last_hour(session=session, actor=admin, key_id=key_id(old))
    assert len(by_hour.buckets) == 7 * 24 and len(by_day.buckets) == 30
    assert [(series.last4, series.current, series.total) for series in by_hour.keys] == [
        (new[-4:], True, 3),
        (old[-4:], False, 3),
    ]
    current, previous = by_day.keys
    assert (current.accepted[-1], previous.accepted[-1], previous.refused[-1]) == (3, 3, 0)
    assert sum(current.accepted[:-1]) == sum(previous.accepted[:-1]) == 0
    assert by_hour.keys[1].accepted[-1] == 3  # this hour's bucket is the last one
    assert by_hour.labels[-1] == utcnow().strftime('%m-%d %H:00')
    assert by_day.labels[-1] == utcnow().strftime('%Y-%m-%d')
    assert last_hour == 3


def test_traffic_is_for_admins_of_the_organization_only(admin: User) -> None:
    key = key_id(generate(admin))
    key_traffic.count(key, True, utcnow())
    key_traffic.flush()
    with write_scope() as session:
        member = make_user(session, organization=session.get_one(Organization, admin.organization_id), role=Role.MEMBER)
        stranger = make_user(session, organization=make_organization(session, name='Other'))
    with read_scope() as session, pytest.raises(PermissionDenied):
        key_traffic.traffic(session=session, actor=member, granularity='hour')
    with read_scope() as session, pytest.raises(PermissionDenied):
        key_traffic.requests_last_hour(session=session, actor=member, key_id=key)
    with read_scope() as session:
        assert key_traffic.traffic(session=session, actor=stranger, granularity='day').keys == []
        assert key_traffic.requests_last_hour(session=session, actor=stranger, key_id=key) == 0
