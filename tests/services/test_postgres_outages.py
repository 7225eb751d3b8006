"""What a person is told when PostgreSQL fails: unreachable, connection lost, read-only, disk full; a bug is not one."""

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import select

from models import Organization, Role, User
from models.base import stored_id
from services import config, db
from services.db import read_scope, write_scope
from tests.factories import make_organization, make_user
from tests.postgres_server import PostgresServer


@pytest.fixture
def pg_url(postgres: PostgresServer, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = postgres.create_database()
    monkeypatch.setenv('CXT_DATABASE_URL', url)
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    assert engine.dialect.name == 'postgresql'
    yield url
    engine.dispose()


def admin_connection(postgres: PostgresServer, url: str) -> psycopg.Connection:
    """A connection of the database's operator, outside the app."""
    return psycopg.connect(
        host='127.0.0.1', port=postgres.port, user='postgres', dbname=database_name(url), autocommit=True
    )


def database_name(url: str) -> str:
    return url.rsplit('/', 1)[1]


def test_a_server_that_is_not_running_is_said_plainly() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    engine = db.make_engine(f'postgresql+psycopg://postgres@127.0.0.1:{port}/cxt')
    try:
        with pytest.raises(OperationalError) as raised, engine.connect():
            pass
    finally:
        engine.dispose()
    assert db.describe_failure(raised.value) == db.UNAVAILABLE


def test_a_lost_connection_is_said_plainly_and_the_next_transaction_reconnects(
    postgres: PostgresServer, pg_url: str
) -> None:
    with pytest.raises(OperationalError) as raised, write_scope() as session:
        pid = session.connection().execute(text('SELECT pg_backend_pid()')).scalar()
        with admin_connection(postgres, pg_url) as operator:  # e.g. a restart, or an idle-session kill
            operator.execute('SELECT pg_terminate_backend(%s)', (pid,))
        session.add(Organization(name='Acme'))
        session.flush()
    assert db.describe_failure(raised.value) == db.UNAVAILABLE
    with write_scope() as session:
        session.add(Organization(name='Acme'))
    with read_scope() as session:
        assert [organization.name for organization in session.exec(select(Organization))] == ['Acme']


def test_a_read_only_database_is_said_plainly(postgres: PostgresServer, pg_url: str) -> None:
    with admin_connection(postgres, pg_url) as operator:  # e.g. after a failover to a replica
        statement = sql.SQL('ALTER DATABASE {} SET default_transaction_read_only = on')
        operator.execute(statement.format(sql.Identifier(database_name(pg_url))))
    db.get_engine().dispose()  # new sessions take the setting
    with pytest.raises(DBAPIError) as raised, write_scope() as session:
        session.add(Organization(name='Acme'))
        session.flush()
    assert 'read-only transaction' in str(raised.value.orig)
    assert db.describe_failure(raised.value) == db.READ_ONLY


def test_a_full_disk_is_said_plainly() -> None:
    # PostgreSQL's own wording when it cannot grow a table file (SQLSTATE 53100); a full disk cannot be staged here.
    orig = psycopg.errors.DiskFull('could not extend file "base/16384/2619": No space left on device')
    error = OperationalError('INSERT INTO organization (name) VALUES (%(name)s)', {'name': 'Acme'}, orig)
    assert db.describe_failure(error) == db.DISK_FULL


def test_a_constraint_violation_is_a_bug_not_a_database_failure(pg_url: str) -> None:
    with write_scope() as session:
        organization = make_organization(session)
        make_user(session, organization=organization, role=Role.ADMIN, email='ada@example.com')
    with pytest.raises(IntegrityError) as raised, write_scope() as session:
        session.add(
            User(organization_id=stored_id(organization), email='ada@example.com', name='Ada', password_hash='x')
        )
        session.flush()
    assert db.describe_failure(raised.value) is None
