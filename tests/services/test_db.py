import threading

from sqlalchemy import text

from models import User
from services.db import get_engine, write_scope
from tests.factories import make_organization, make_user


def test_sqlite_runs_in_wal_mode_with_foreign_keys(database: None) -> None:
    with get_engine().connect() as connection:
        assert connection.execute(text('PRAGMA journal_mode')).scalar() == 'wal'
        assert connection.execute(text('PRAGMA foreign_keys')).scalar() == 1
        assert connection.execute(text('PRAGMA busy_timeout')).scalar_one() >= 5000


def test_concurrent_read_modify_write_loses_no_update(database: None) -> None:
    """Eight threads each bump one counter 50 times through the ORM; every bump must count."""
    with write_scope() as session:
        user = make_user(session, organization=make_organization(session), name='0')
    threads_count, bumps = 8, 50
    barrier = threading.Barrier(threads_count)

    def bump() -> None:
        barrier.wait()
        for _ in range(bumps):
            with write_scope() as session:
                stored = session.get_one(User, user.id)
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
        tables = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
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
