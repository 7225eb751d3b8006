"""When the database is busy, read-only or holds a key the server cannot decrypt: pages keep answering, and every
action says what happened instead of failing silently."""

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography.fernet import Fernet
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import event
from sqlmodel import Session, select

from models import ApiKey
from services import crypto, db
from tests.ui.helpers import button, from_database, in_database, set_up_organization


def database_file() -> str:
    path = db.get_engine().url.database
    assert path is not None
    return path


@contextmanager
def write_lock_held_elsewhere() -> Iterator[sqlite3.Connection]:
    """Another process's writer, as SQLite sees it: a connection of its own holding the write lock."""
    other = sqlite3.connect(database_file(), isolation_level=None, check_same_thread=False)
    other.execute('BEGIN IMMEDIATE')
    try:
        yield other
    finally:
        other.execute('ROLLBACK')
        other.close()


def reconnect_with(monkeypatch: pytest.MonkeyPatch, *, busy_timeout_ms: int | None = None, **pragmas: Any) -> None:
    """New connections for the app: a shorter busy timeout, or extra pragmas (applied to every connection)."""
    engine = db.get_engine()
    if busy_timeout_ms is not None:
        monkeypatch.setattr(db, 'SQLITE_BUSY_TIMEOUT_MS', busy_timeout_ms)

    def apply(dbapi_connection: Any, _record: Any) -> None:
        for name, value in pragmas.items():
            dbapi_connection.execute(f'PRAGMA {name}={value}')

    event.listen(engine, 'connect', apply)
    engine.dispose()


async def activity_shows(user: User, what: str) -> None:
    for _ in range(50):
        tables = user._gather_elements(kind=ui.table, marker='activity-table')  # built once the tab is opened
        if tables and what in [row['what'] for row in tables.pop().rows]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f'the Activity table never showed {what!r}')


async def test_pages_answer_reads_while_another_writer_holds_the_database(user: User) -> None:
    await set_up_organization(user)
    with write_lock_held_elsewhere():
        # A tab switch and a read action answer at once; so does a whole page load, which only reads.
        user.find('Activity').click()
        await activity_shows(user, 'Created the organization')
        table = user.find(kind=ui.table, marker='activity-table').elements.pop()
        table.rows = []
        button(user, 'Refresh').click()
        await activity_shows(user, 'Created the organization')
        await user.open('/')
        await user.should_see('Step 1: Generate API Key')
        await user.should_see('Generate API Key')


async def test_a_write_waits_for_the_other_writer_then_succeeds(user: User) -> None:
    await set_up_organization(user)
    with write_lock_held_elsewhere():
        button(user, 'Generate API Key').click()
        await asyncio.sleep(0.5)
        await user.should_not_see('API key generated')  # still waiting for the lock, page alive
        generate = user.find(kind=ui.button, content='Generate API Key').elements.pop()
        assert not generate.enabled, 'the button shows the action is in progress'
    await user.should_see('API key generated', retries=50)
    assert len(await in_database(lambda session: session.exec(select(ApiKey)).all())) == 1


async def test_a_write_that_waits_too_long_says_the_database_is_busy(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_up_organization(user)
    reconnect_with(monkeypatch, busy_timeout_ms=300)
    with write_lock_held_elsewhere():
        button(user, 'Generate API Key').click()
        await user.should_see(db.BUSY, retries=50)
    assert await in_database(lambda session: session.exec(select(ApiKey)).all()) == []
    button(user, 'Generate API Key').click()  # once the other writer is done, the same click works
    await user.should_see('API key generated', retries=50)


async def test_a_read_only_database_is_said_once_and_nothing_is_lost(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    reconnect_with(monkeypatch, query_only='ON')  # SQLite refuses every write, as on a read-only data directory

    button(user, 'Rotate API Key').click()
    await user.should_see(marker='confirm-rotate')
    user.find(marker='confirm-rotate').click()
    await user.should_see(db.READ_ONLY, retries=50)
    await user.should_not_see('API key rotated')
    keys = await from_database(lambda session: session.exec(select(ApiKey)).all())
    assert len(keys) == 1 and keys[0].expires_at is None, 'the old key still works'

    user.find('User Management').click()
    await user.should_see(marker='invite-email')  # built when first opened
    user.find(marker='invite-email').type('grace@example.com')
    button(user, 'Send Invite').click()
    await user.should_see(db.READ_ONLY, retries=50)


async def test_a_key_the_server_cannot_decrypt_says_what_to_do(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    button(user, 'Hide API Key').click()
    await in_database(_encrypt_with_another_secret)

    button(user, 'Reveal API Key').click()
    await user.should_see(crypto.UNDECRYPTABLE, retries=50)
    button(user, 'Rotate API Key').click()  # the advice works: a new key, revealed
    await user.should_see(marker='confirm-rotate')
    user.find(marker='confirm-rotate').click()
    await user.should_see('API key rotated', retries=50)


def _encrypt_with_another_secret(session: Session) -> None:
    """What a changed server secret leaves behind: a stored key encrypted under a key the server no longer has."""
    key = session.exec(select(ApiKey)).one()
    key.encrypted_key = Fernet(Fernet.generate_key()).encrypt(b'cxt_' + b'x' * 40).decode()
    session.add(key)
