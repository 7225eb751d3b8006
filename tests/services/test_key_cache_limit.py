"""The widget API's per-connection key cache stays bounded: past its limit it starts over, and every key still works."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert

from models import ApiKey, User
from models.base import stored_id, table_of
from services.db import hot_read_connection, write_scope
from services.keys import api_keys
from tests.factories import make_organization, make_user

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


@contextmanager
def counted_selects(connection: Connection) -> Iterator[list[str]]:
    """The SELECT statements `connection` sends to the database while the block runs."""
    selects: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith('SELECT'):
            selects.append(statement)

    event.listen(connection, 'before_cursor_execute', record)
    try:
        yield selects
    finally:
        event.remove(connection, 'before_cursor_execute', record)


def store_keys(admin: User, count: int) -> list[str]:
    """`count` keys of the admin's organization, all valid (old keys in a long grace window), in one transaction."""
    keys = [api_keys.new_plaintext_key() for _ in range(count)]
    rows = [
        {
            'organization_id': admin.organization_id,
            'key_hash': api_keys.hash_key(key),
            'encrypted_key': 'not needed for verification',
            'last4': key[-4:],
            'created_by_id': stored_id(admin),
            'created_at': NOW - timedelta(days=1),
            'expires_at': NOW + timedelta(days=1),
            'last_used_at': NOW,  # no last-used write on these lookups: only the cache is measured
        }
        for key in keys
    ]
    with write_scope() as session:
        session.connection().execute(insert(table_of(ApiKey)), rows)
    return keys


@pytest.mark.sqlite_only("the lookup cache keys on SQLite's PRAGMA data_version; other engines do not cache")
def test_the_cache_starts_over_once_it_holds_its_limit_and_keys_still_verify(admin: User) -> None:
    limit = api_keys._CACHE_LIMIT
    keys = store_keys(admin, limit + 1)
    first, newest = keys[0], keys[-1]
    with hot_read_connection() as connection:
        for key in keys[:limit]:
            assert api_keys.verify_key(connection=connection, key=key, now=NOW) is not None
        with counted_selects(connection) as selects:
            assert api_keys.verify_key(connection=connection, key=first, now=NOW) is not None
        assert selects == [], f'{limit} keys fit in the cache'

        with counted_selects(connection) as selects:
            assert api_keys.verify_key(connection=connection, key=newest, now=NOW) is not None
            assert api_keys.verify_key(connection=connection, key=first, now=NOW) is not None
        assert len(selects) == 2, 'one key more and the cache starts over: the first key is looked up again'

        with counted_selects(connection) as selects:
            assert api_keys.verify_key(connection=connection, key=newest, now=NOW) is not None
        assert selects == [], 'and is cached again from there'
