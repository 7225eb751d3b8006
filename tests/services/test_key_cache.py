"""What the widget API's key cache promises: the statements it saves, the moments it must forget or write."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event
from sqlmodel import select

from models import ApiKey, User
from services.db import hot_read_connection, read_scope, write_scope
from services.keys import api_keys
from tests.factories import acting, make_organization, make_user

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
ONE_MINUTE = timedelta(seconds=60)
# The key stops working at the very moment its expires_at is reached, not a microsecond later.
EXPIRY_BOUNDARY = pytest.mark.parametrize(
    ('moment', 'accepted'), [(NOW - ONE_MICROSECOND, True), (NOW, False)], ids=['just-before-expiry', 'at-expiry']
)


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


@pytest.fixture
def key(admin: User) -> str:
    with write_scope() as session:
        return api_keys.generate_key(session=session, actor=admin)


@contextmanager
def recorded(connection: Connection) -> Iterator[list[str]]:
    """Every SQL statement `connection` sends to the database while the block runs."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        statements.append(statement)

    event.listen(connection, 'before_cursor_execute', record)
    try:
        yield statements
    finally:
        event.remove(connection, 'before_cursor_execute', record)


def selects(statements: list[str]) -> int:
    return sum(statement.lstrip().upper().startswith('SELECT') for statement in statements)


def last_used_writes(statements: list[str]) -> int:
    return sum(statement.lstrip().upper().startswith('UPDATE API_KEY') for statement in statements)


def stored_last_used_at() -> datetime | None:
    with read_scope() as session:
        return session.exec(select(ApiKey.last_used_at)).one()


def expire(key: str, at: datetime) -> None:
    with write_scope() as session:
        stored = session.exec(select(ApiKey).where(ApiKey.key_hash == api_keys.hash_key(key))).one()
        stored.expires_at = at
        session.add(stored)


@pytest.mark.sqlite_only("the lookup cache keys on SQLite's PRAGMA data_version; other engines do not cache")
def test_second_lookup_of_a_key_on_the_same_connection_runs_no_statement(key: str) -> None:
    with hot_read_connection() as connection, recorded(connection) as statements:
        first = api_keys.verify_key(connection=connection, key=key, now=NOW)
        assert first is not None and first.organization_name == 'Acme'
        assert selects(statements) == 1
        statements.clear()
        # Its own last-used commit (just above) must not have dropped the cache.
        assert api_keys.verify_key(connection=connection, key=key, now=NOW) == first
        assert statements == []


@pytest.mark.sqlite_only("the lookup cache keys on SQLite's PRAGMA data_version; other engines do not cache")
def test_last_used_is_written_at_most_once_a_minute_on_the_cached_path_too(key: str) -> None:
    with hot_read_connection() as connection, recorded(connection) as statements:
        for _ in range(50):
            assert api_keys.verify_key(connection=connection, key=key, now=NOW) is not None
        assert (selects(statements), last_used_writes(statements)) == (1, 1)
        assert stored_last_used_at() == NOW
        statements.clear()

        assert api_keys.verify_key(connection=connection, key=key, now=NOW + ONE_MINUTE - ONE_MICROSECOND) is not None
        assert statements == []

        assert api_keys.verify_key(connection=connection, key=key, now=NOW + ONE_MINUTE) is not None
        assert (selects(statements), last_used_writes(statements)) == (0, 1)
        assert stored_last_used_at() == NOW + ONE_MINUTE


@EXPIRY_BOUNDARY
def test_expiry_on_a_cache_miss(key: str, moment: datetime, accepted: bool) -> None:
    expire(key, at=NOW)
    with hot_read_connection() as connection, recorded(connection) as statements:
        assert (api_keys.verify_key(connection=connection, key=key, now=moment) is not None) is accepted
        assert selects(statements) == 1


@EXPIRY_BOUNDARY
@pytest.mark.sqlite_only("the lookup cache keys on SQLite's PRAGMA data_version; other engines do not cache")
def test_expiry_on_a_cache_hit(key: str, moment: datetime, accepted: bool) -> None:
    expire(key, at=NOW)
    with hot_read_connection() as connection, recorded(connection) as statements:
        assert api_keys.verify_key(connection=connection, key=key, now=NOW - ONE_MINUTE) is not None
        statements.clear()
        assert (api_keys.verify_key(connection=connection, key=key, now=moment) is not None) is accepted
        assert selects(statements) == 0


def test_a_commit_by_another_connection_drops_the_cache(admin: User, key: str) -> None:
    with hot_read_connection() as connection, recorded(connection) as statements:
        assert api_keys.verify_key(connection=connection, key=key) is not None
        with write_scope() as session:
            new = api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(0))
        statements.clear()

        assert api_keys.verify_key(connection=connection, key=key) is None
        assert selects(statements) == 1
        assert api_keys.verify_key(connection=connection, key=new) is not None
