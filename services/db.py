"""The database engine, the session scope callers open, and start-up migrations."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / 'migrations'

_engine: Engine | None = None
READ_ONLY_OPTION = 'cxt_read_only'


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE transactions."""
    if not url.startswith('sqlite'):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={'check_same_thread': False, 'timeout': 15})

    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's 'begin' event issue BEGIN itself, so it can take the write lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA foreign_keys=ON')
        cursor.execute('PRAGMA busy_timeout=15000')
        cursor.execute('PRAGMA synchronous=NORMAL')
        cursor.close()

    @event.listens_for(engine, 'begin')
    def _on_begin(connection: Any) -> None:
        # Deferred transactions lose read-modify-write updates under concurrency; IMMEDIATE serializes writers.
        # Pure readers (the widget API's lookup) opt out so they never wait for the write lock.
        deferred = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql('BEGIN' if deferred else 'BEGIN IMMEDIATE')

    return engine


def init_database(url: str) -> Engine:
    """Create the process's engine and bring the schema up to date."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(url)
    run_migrations(_engine)
    return _engine


def get_engine() -> Engine:
    if _engine is None:
        raise RuntimeError('init_database() has not been called')
    return _engine


def run_migrations(engine: Engine) -> None:
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes['connection'] = connection
        command.upgrade(config, 'head')


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A pooled connection for short read-mostly work outside the ORM (the widget API's hot path)."""
    with get_engine().connect().execution_options(**{READ_ONLY_OPTION: True}) as connection:
        yield connection


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on an exception."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
