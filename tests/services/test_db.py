import threading

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from models import Organization, User
from services import db as db_module
from services.db import get_engine, write_scope
from tests.factories import make_organization, make_user


@pytest.mark.sqlite_only('the SQLite settings (PRAGMAs) of every connection')
def test_sqlite_runs_in_wal_mode_with_foreign_keys(database: None) -> None:
    with get_engine().connect() as connection:
        assert connection.execute(text('PRAGMA journal_mode')).scalar() == 'wal'
        assert connection.execute(text('PRAGMA foreign_keys')).scalar() == 1
        assert connection.execute(text('PRAGMA busy_timeout')).scalar_one() >= 5000


# On SQLite writers take turns (BEGIN IMMEDIATE); on PostgreSQL they run side by side, and a read-modify-write locks
# what it changes (services/db.py lists which lock guards which write).
def test_concurrent_read_modify_write_that_locks_its_row_loses_no_update(database: None) -> None:
    """Eight threads each bump one counter 50 times through the ORM, reading it FOR UPDATE; every bump must count."""
    with write_scope() as session:
        user = make_user(session, organization=make_organization(session), name='0')
    threads_count, bumps = 8, 50
    barrier = threading.Barrier(threads_count)

    def bump() -> None:
        barrier.wait()
        for _ in range(bumps):
            with write_scope() as session:
                stored = session.get_one(User, user.id, with_for_update=True)
                stored.name = str(int(stored.name) + 1)
                session.add(stored)

    threads = [threading.Thread(target=bump) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with write_scope() as session:
        assert session.get_one(User, user.id).name == str(threads_count * bumps)


def test_migrations_are_the_schema(database: None) -> None:
    with get_engine().connect() as connection:
        tables = set(inspect(connection).get_table_names())
        version = connection.execute(text('SELECT version_num FROM alembic_version')).scalar()
    assert {'organization', 'user', 'api_key', 'audit_event', 'alembic_version'} <= tables
    assert version


def test_models_and_migrations_agree(database: None) -> None:
    """A model change without its migration shows up here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with get_engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={'compare_type': False})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_a_postgresql_writer_waiting_past_the_busy_timeout_for_a_lock_is_told_busy(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a writer that needs the same lock waits; one that waits past the busy timeout is told busy."""
    monkeypatch.setattr(db_module, 'SQLITE_BUSY_TIMEOUT_MS', 300)
    holding, release = threading.Event(), threading.Event()

    def hold_the_account() -> None:
        with write_scope() as session:
            db_module.lock_account(session=session, email='ada@example.com')
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_account)
    holder.start()
    try:
        assert holding.wait(10)
        with write_scope() as session:  # another account, and a write that locks nothing: no wait
            db_module.lock_account(session=session, email='max@example.com')
            session.add(Organization(name='Acme'))
        with pytest.raises(OperationalError) as raised, write_scope() as session:
            db_module.lock_account(session=session, email=' Ada@Example.com')
        assert db_module.describe_failure(raised.value) == db_module.BUSY
    finally:
        release.set()
        holder.join()
    with write_scope() as session:  # the lock is free again once the other writer commits
        db_module.lock_account(session=session, email='ada@example.com')
