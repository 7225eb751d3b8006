"""Read and write transactions, the event-loop guard, and the sentence a person gets when the database fails."""

import errno
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from models import AuditAction, AuditEvent, Organization
from services import db
from services.audit import record_event


@pytest.fixture
def other_writer(database: None) -> Iterator[sqlite3.Connection]:
    """Another process's writer holding SQLite's write lock."""
    path = db.get_engine().url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute('BEGIN IMMEDIATE')
    yield other
    other.execute('ROLLBACK')
    other.close()


@pytest.mark.sqlite_only("another connection holds SQLite's write lock")
def test_a_read_never_waits_for_a_writer(other_writer: sqlite3.Connection) -> None:
    started = time.monotonic()
    with db.read_scope() as session:
        assert session.exec(select(Organization)).all() == []
    assert time.monotonic() - started < 1.0  # a write would wait up to the 15 s busy timeout


@pytest.mark.sqlite_only("SQLite's busy timeout behind another writer")
def test_a_write_waits_then_gives_up_with_a_clear_reason(
    other_writer: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, 'SQLITE_BUSY_TIMEOUT_MS', 200)
    db.get_engine().dispose()  # new connections take the shorter timeout
    started = time.monotonic()
    with pytest.raises(OperationalError) as raised, db.write_scope() as session:
        session.add(Organization(name='Acme'))
        session.flush()
    assert time.monotonic() - started >= 0.2
    assert db.describe_failure(raised.value) == db.BUSY


@pytest.mark.sqlite_only("another connection holds SQLite's write lock")
def test_a_lock_is_held_when_it_returns(other_writer: sqlite3.Connection) -> None:
    """What follows `db.lock` (a clock read, a count) happens inside the lock. On SQLite the lock is the write lock that
    BEGIN IMMEDIATE takes, which SQLAlchemy sends with the first statement: `lock` returned before it and a sign-in
    read the time while still queued behind another, then said `Try again in 16 minutes` (the throttle test, 1 run in
    20)."""
    returned: list[float] = []

    def locked_write() -> None:
        with db.write_scope() as session:
            db.lock(session=session, name='sign-in:ada@example.com')
            returned.append(time.monotonic())

    writer = threading.Thread(target=locked_write)
    writer.start()
    time.sleep(0.3)
    released = time.monotonic()
    other_writer.execute('ROLLBACK')
    writer.join()
    other_writer.execute('BEGIN IMMEDIATE')  # for the fixture's own ROLLBACK
    assert returned and returned[0] >= released, 'returned while the other writer still held the lock'


def test_what_a_read_scope_loaded_stays_usable_after_it_ends(database: None) -> None:
    with db.write_scope() as session:
        session.add(Organization(name='Acme'))
    with db.read_scope() as session:
        organization = session.exec(select(Organization)).one()
    assert organization.name == 'Acme'


def test_a_read_scope_keeps_nothing_it_was_asked_to_write(database: None) -> None:
    with db.read_scope() as session:
        session.add(Organization(name='Acme'))
        session.flush()
    with db.read_scope() as session:
        assert session.exec(select(Organization)).all() == []


async def test_no_database_session_on_the_event_loop(database: None) -> None:
    with pytest.raises(db.DatabaseOnEventLoop), db.read_scope():
        pass
    with pytest.raises(db.DatabaseOnEventLoop), db.write_scope():
        pass


@pytest.mark.sqlite_only('a full disk is made with PRAGMA max_page_count')
def test_a_full_disk_is_said_plainly(database: None) -> None:
    with pytest.raises(OperationalError) as raised, db.write_scope() as session:
        connection = session.connection()
        pages = connection.exec_driver_sql('PRAGMA page_count').scalar()
        connection.exec_driver_sql(f'PRAGMA max_page_count={pages}')  # the file may not grow: as on a full disk
        for _ in range(10_000):
            record_event(
                session=session,
                organization_id=None,
                actor=None,
                action=AuditAction.LOGIN_FAILED,
                target='x' * 500,
            )
            session.flush()
    assert db.describe_failure(raised.value) == db.DISK_FULL
    with db.read_scope() as session:
        assert session.exec(select(AuditEvent)).all() == [], 'nothing half-written'


@pytest.mark.sqlite_only(
    'a read-only database is made with PRAGMA query_only (PostgreSQL: tests/api/test_readiness.py)'
)
def test_a_read_only_database_is_said_plainly(database: None) -> None:
    with pytest.raises(OperationalError) as raised, db.write_scope() as session:
        session.connection().exec_driver_sql('PRAGMA query_only=ON')
        session.add(Organization(name='Acme'))
        session.flush()
    assert db.describe_failure(raised.value) == db.READ_ONLY


def test_a_missing_database_is_said_plainly(tmp_path: Path) -> None:
    engine = db.make_engine(f'sqlite:///{tmp_path}/gone/cxt.sqlite3')
    with pytest.raises(OperationalError) as raised, engine.connect():
        pass
    assert db.describe_failure(raised.value) == db.MISSING


@pytest.mark.parametrize(
    ('code', 'message'),
    [(errno.ENOSPC, db.DISK_FULL), (errno.EROFS, db.READ_ONLY), (errno.ENOENT, db.MISSING)],
)
def test_file_system_failures_are_said_plainly(code: int, message: str) -> None:
    assert db.describe_failure(OSError(code, 'failed')) == message


def test_anything_else_is_not_described_as_a_database_failure() -> None:
    assert db.describe_failure(ValueError('a bug')) is None
    assert db.describe_failure(OSError(errno.EPIPE, 'broken pipe')) is None
