"""Database failures are told apart by SQLite's error name and PostgreSQL's SQLSTATE, raised here by real databases."""

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from services import db
from services.db_errors import Failure, classify, sqlite_name, sqlstate, unavailable
from tests.postgres_server import PostgresServer


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / 'cxt.sqlite3'
    with sqlite3.connect(path) as connection:
        connection.execute('CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)')
    return path


def failed_insert(engine: Engine) -> DBAPIError:
    try:
        with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
            connection.execute(text("INSERT INTO note (body) VALUES ('x')"))
        return raised.value
    finally:
        engine.dispose()


def test_a_database_file_opened_read_only_is_read_only(sqlite_file: Path) -> None:
    error = failed_insert(db.make_engine(f'sqlite:///file:{sqlite_file}?mode=ro&uri=true'))
    assert sqlite_name(error) == 'SQLITE_READONLY'
    assert classify(error) == Failure.READ_ONLY
    assert db.describe_failure(error) == db.READ_ONLY
    assert not unavailable(error)


def test_a_database_file_locked_by_another_writer_is_busy(sqlite_file: Path) -> None:
    other = sqlite3.connect(sqlite_file, isolation_level=None)
    other.execute('BEGIN IMMEDIATE')  # another process's writer holds the write lock
    try:
        error = failed_insert(db.make_engine(f'sqlite:///{sqlite_file}?timeout=0'))
    finally:
        other.execute('ROLLBACK')
        other.close()
    assert sqlite_name(error) == 'SQLITE_BUSY'
    assert db.describe_failure(error) == db.BUSY
    assert not unavailable(error)


def test_a_file_that_is_not_a_database_cannot_be_opened(tmp_path: Path) -> None:
    path = tmp_path / 'cxt.sqlite3'
    path.write_bytes(b'not a database, but a file someone copied here by mistake' * 100)
    error = failed_insert(db.make_engine(f'sqlite:///{path}'))
    assert sqlite_name(error) == 'SQLITE_NOTADB'
    assert db.describe_failure(error) == db.MISSING
    assert unavailable(error)


def test_a_bug_in_a_statement_is_not_a_database_failure(sqlite_file: Path) -> None:
    engine = db.make_engine(f'sqlite:///{sqlite_file}')
    with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
        connection.execute(text('INSERT INTO no_such_table (body) VALUES (1)'))
    engine.dispose()
    assert sqlite_name(raised.value) == 'SQLITE_ERROR'
    assert db.describe_failure(raised.value) is None
    assert not unavailable(raised.value)


@pytest.fixture
def pg_engine(postgres: PostgresServer) -> Iterator[Engine]:
    engine = db.make_engine(postgres.create_database(), pool_size=3)
    with engine.begin() as connection:
        connection.execute(text('CREATE TABLE note (id integer PRIMARY KEY, body text)'))
        connection.execute(text("INSERT INTO note VALUES (1, 'a'), (2, 'b')"))
    yield engine
    engine.dispose()


def test_a_lost_serialization_race_on_postgresql_is_busy(pg_engine: Engine) -> None:
    serializable = pg_engine.execution_options(isolation_level='REPEATABLE READ')
    with serializable.connect() as first, serializable.connect() as second:
        first.execute(text('SELECT body FROM note WHERE id = 1')).scalar()  # both take their snapshot
        second.execute(text('SELECT body FROM note WHERE id = 1')).scalar()
        first.execute(text("UPDATE note SET body = 'first' WHERE id = 1"))
        first.commit()
        with pytest.raises(OperationalError) as raised:
            second.execute(text("UPDATE note SET body = 'second' WHERE id = 1"))
    assert isinstance(raised.value.orig, psycopg.errors.SerializationFailure)
    assert sqlstate(raised.value) == '40001'
    assert db.describe_failure(raised.value) == db.BUSY
    assert not unavailable(raised.value)


def test_a_deadlock_victim_on_postgresql_is_busy(pg_engine: Engine) -> None:
    errors: list[DBAPIError] = []
    both_locked = threading.Barrier(2)

    def update(first: int, then: int) -> None:
        try:
            with pg_engine.begin() as connection:
                connection.execute(text("UPDATE note SET body = 'x' WHERE id = :id"), {'id': first})
                both_locked.wait(timeout=10)
                connection.execute(text("UPDATE note SET body = 'y' WHERE id = :id"), {'id': then})
        except DBAPIError as error:
            errors.append(error)

    threads = [threading.Thread(target=update, args=(1, 2)), threading.Thread(target=update, args=(2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [sqlstate(error) for error in errors] == ['40P01'], 'PostgreSQL picks one victim'
    assert db.describe_failure(errors[0]) == db.BUSY


def test_a_lock_timeout_on_postgresql_is_busy(pg_engine: Engine) -> None:
    with pg_engine.connect() as holder, pg_engine.connect() as waiter:
        holder.execute(text("UPDATE note SET body = 'held' WHERE id = 1"))
        waiter.exec_driver_sql("SET lock_timeout = '100ms'")
        with pytest.raises(OperationalError) as raised:
            waiter.execute(text("UPDATE note SET body = 'waited' WHERE id = 1"))
    assert sqlstate(raised.value) == '55P03'
    assert db.describe_failure(raised.value) == db.BUSY


def test_a_terminated_backend_on_postgresql_is_unavailable(pg_engine: Engine) -> None:
    with pg_engine.connect() as victim, pg_engine.connect() as operator:
        pid = victim.execute(text('SELECT pg_backend_pid()')).scalar()
        operator.execute(text('SELECT pg_terminate_backend(:pid)'), {'pid': pid})
        with pytest.raises(OperationalError) as raised:
            victim.execute(text('SELECT 1'))
    assert sqlstate(raised.value) == '57P01'  # admin_shutdown: "terminating connection due to administrator command"
    assert db.describe_failure(raised.value) == db.UNAVAILABLE
    assert unavailable(raised.value)


def test_a_read_only_transaction_on_postgresql_is_read_only(pg_engine: Engine) -> None:
    with pg_engine.connect() as connection:
        connection.exec_driver_sql('SET TRANSACTION READ ONLY')
        with pytest.raises(DBAPIError) as raised:
            connection.execute(text("UPDATE note SET body = 'x' WHERE id = 1"))
    assert sqlstate(raised.value) == '25006'
    assert db.describe_failure(raised.value) == db.READ_ONLY
    assert not unavailable(raised.value)


def test_a_constraint_violation_on_postgresql_is_a_bug(pg_engine: Engine) -> None:
    with pytest.raises(DBAPIError) as raised, pg_engine.begin() as connection:
        connection.execute(text("INSERT INTO note VALUES (1, 'again')"))
    assert sqlstate(raised.value) == '23505'
    assert classify(raised.value) is None
    assert not unavailable(raised.value)
