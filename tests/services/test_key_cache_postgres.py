"""The widget API's per-process cache on PostgreSQL (services/key_cache.py), in this test process: a cached request
sends no statement; when its listening connection is killed the process stops trusting its cache at once, keeps
answering correctly from the database, and caches again once it listens again; a rotation made while it was not
listening is refused on the next request; the last-used write failing on a read-only database keeps keys working."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import event

from api import create_api_app
from models import User
from services import db, key_cache
from services.db import write_scope
from services.keys import api_keys
from services.team import organizations
from tests.factories import acting, make_organization, make_user
from tests.postgres_server import PostgresServer

ENDPOINT = '/api/v1/organization'


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'the condition did not hold in time'
        time.sleep(0.02)


@pytest.fixture
def listening(pg_database: str) -> Iterator[str]:
    """This process's key cache listening on the test's database (as main.py starts it); yields the URL."""
    key_cache.start(pg_database)
    wait_until(key_cache.fresh)
    yield pg_database
    key_cache.stop()


@pytest.fixture
def admin(listening: str) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


@pytest.fixture
def key(admin: User) -> str:
    with write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='acme', sandbox_subdomain='')
        return api_keys.generate_key(session=session, actor=admin)


@pytest.fixture
async def client(listening: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(create_api_app()), base_url='http://test') as client:
        yield client


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every statement any connection of the app's engine sends while the block runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        sent.append(statement)

    engine = db.get_engine()
    event.listen(engine, 'before_cursor_execute', record)
    try:
        yield sent
    finally:
        event.remove(engine, 'before_cursor_execute', record)


def operator(postgres: PostgresServer, dbname: str = 'postgres') -> psycopg.Connection:
    return psycopg.connect(host='127.0.0.1', port=postgres.port, user='postgres', dbname=dbname, autocommit=True)


def database_name(url: str) -> str:
    return url.rsplit('/', 1)[1]


def rotate(admin: User, grace: timedelta = timedelta(0)) -> str:
    with write_scope() as session:
        return api_keys.rotate_key(session=session, actor=acting(session, admin), grace=grace)


async def status(client: httpx.AsyncClient, key: str, origin: str | None = None) -> int:
    headers = {'Authorization': f'Bearer {key}', **({'Origin': origin} if origin else {})}
    return (await client.get(ENDPOINT, headers=headers)).status_code


async def test_a_cached_request_sends_no_statement(client: httpx.AsyncClient, key: str) -> None:
    assert await status(client, key) == 200  # the miss: read, stored, last use written
    with statements() as sent:
        for _ in range(50):
            response = await client.get(ENDPOINT, headers={'Authorization': f'Bearer {key}'})
            assert response.status_code == 200 and response.json()['kustomer']['subdomain'] == 'acme'
        preflight = await client.options(ENDPOINT, headers={'Origin': 'https://acme.kustomerapp.com'})
        assert preflight.status_code == 204  # its first time: one read
        preflight = await client.options(ENDPOINT, headers={'Origin': 'https://acme.kustomerapp.com'})
        assert preflight.headers['access-control-allow-origin'] == 'https://acme.kustomerapp.com'
    assert len(sent) == 1, sent


async def test_a_saved_subdomain_shows_in_the_api_before_save_returns(
    client: httpx.AsyncClient, admin: User, key: str
) -> None:
    response = await client.get(ENDPOINT, headers={'Authorization': f'Bearer {key}'})
    assert response.json()['kustomer']['subdomain'] == 'acme'  # cached now

    def save() -> None:
        with write_scope() as session:
            organizations.update_subdomains(session=session, actor=admin, subdomain='globex', sandbox_subdomain='')

    await asyncio.to_thread(save)
    response = await client.get(ENDPOINT, headers={'Authorization': f'Bearer {key}'})
    assert response.json()['kustomer']['subdomain'] == 'globex'


async def test_a_killed_listener_stops_the_cache_at_once_and_a_rotation_meanwhile_is_refused(
    client: httpx.AsyncClient, postgres: PostgresServer, listening: str, admin: User, key: str
) -> None:
    assert await status(client, key) == 200
    name = database_name(listening)
    with operator(postgres) as admin_connection:
        # It cannot listen again until allowed: the rotation below happens while it is deaf.
        admin_connection.execute(sql.SQL('ALTER DATABASE {} ALLOW_CONNECTIONS false').format(sql.Identifier(name)))
        try:
            admin_connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cxt key cache' "
                'AND datname = %s',
                (name,),
            )
            await asyncio.to_thread(wait_until, lambda: not key_cache.fresh(), 2.0)

            with statements() as sent:
                assert await status(client, key) == 200  # still answered, from the database
            assert sent, 'not from the cache'
            new = await asyncio.to_thread(rotate, admin)  # on a connection the pool already holds
            assert await status(client, key) == 401
            assert await status(client, new) == 200
        finally:
            admin_connection.execute(sql.SQL('ALTER DATABASE {} ALLOW_CONNECTIONS true').format(sql.Identifier(name)))

    await asyncio.to_thread(wait_until, key_cache.fresh)
    assert await status(client, new) == 200
    with statements() as sent:
        assert await status(client, new) == 200
        assert await status(client, key) == 401
    assert len(sent) == 1, 'the new key cached again; the old one read once'


async def test_the_last_used_write_failing_on_a_read_only_database_keeps_the_key_working(
    client: httpx.AsyncClient, postgres: PostgresServer, listening: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = database_name(listening)
    with operator(postgres) as admin_connection:  # e.g. a failover to a standby promoted late
        statement = sql.SQL('ALTER DATABASE {} SET default_transaction_read_only = on')
        admin_connection.execute(statement.format(sql.Identifier(name)))
    db.get_engine().dispose()  # new connections take the setting
    statuses = [await status(client, key) for _ in range(20)]
    assert statuses == [200] * 20
    writes = [record for record in caplog.records if 'could not record its last use' in record.getMessage()]
    assert len(writes) == 1, 'tried once, not per request'
