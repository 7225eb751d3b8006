"""PostgreSQL stopped and started again while the widget API is loaded (its own server: this test stops it).

While it is down the widget API answers 503 `{"error": "unavailable"}` with `Retry-After`, logs the outage once (not
per request, no traceback), and never answers from its cache; once it is back, both listeners (the key cache's and the
pages' events) listen again within about a second, whatever the outage's length, and the cache serves again."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from api import create_api_app
from services import events, key_cache
from services.db import write_scope
from services.keys import api_keys
from tests.factories import make_organization, make_user
from tests.postgres_server import PostgresServer, find_bin_dir
from tests.services.test_key_cache_postgres import ENDPOINT, statements, wait_until

OUTAGE = 8.0  # seconds: long enough that a listener backing off to 10 s would still be asleep well after the restart
BACK_WITHIN = 2.5  # seconds after the server is back (its restart takes part of that on a busy machine)


@pytest.fixture(scope='module')
def postgres() -> Iterator[PostgresServer]:
    """This module's own server (it is stopped and started by the test), instead of the run's shared one."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip('PostgreSQL is not installed (.ci/run installs it)')
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(pg_database: str, isolated_environment: Path) -> AsyncIterator[httpx.AsyncClient]:
    key_cache.start(pg_database)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(create_api_app()), base_url='http://test') as client:
            yield client
    finally:
        key_cache.stop()


def make_key() -> str:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session, name='Acme'))
        return api_keys.generate_key(session=session, actor=admin)


async def test_a_restart_under_load_answers_503_then_listens_again_within_a_second(
    client: httpx.AsyncClient, postgres: PostgresServer, pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await asyncio.to_thread(wait_until, key_cache.fresh)
    key = await asyncio.to_thread(make_key)
    listened: list[float] = []

    async def on_listening() -> None:
        listened.append(time.monotonic())

    async def ignore(_: events.Event) -> None:
        pass

    pages_listener = asyncio.create_task(events.listen(pg_database, ignore, on_listening=on_listening))
    answers: list[tuple[float, int, httpx.Response]] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            response = await client.get(ENDPOINT, headers={'Authorization': f'Bearer {key}'})
            answers.append((time.monotonic(), response.status_code, response))
            await asyncio.sleep(0.005)

    loaders = [asyncio.create_task(load()) for _ in range(4)]
    try:
        started = time.monotonic()
        while not (listened and key_cache.fresh()):
            assert time.monotonic() - started < 20, 'never listened'
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert {status for _, status, _ in answers} == {200}

        await asyncio.to_thread(postgres.halt)
        halted = time.monotonic()
        await asyncio.to_thread(wait_until, lambda: not key_cache.fresh(), 0.5)  # its connection is gone: at once
        await asyncio.sleep(OUTAGE)
        during = [response for at, status, response in answers if at > halted + 0.1]
        assert during and {response.status_code for response in during} == {503}
        assert during[-1].json() == {'error': 'unavailable'} and during[-1].headers['retry-after'].isdigit()

        listened.clear()
        await asyncio.to_thread(postgres.resume)
        resumed = time.monotonic()
        while not (listened and key_cache.fresh()):
            assert time.monotonic() - resumed < 10, 'never listened again'
            await asyncio.sleep(0.02)
        pages_back, cache_back = listened[0] - resumed, time.monotonic() - resumed
        print(f'\nlistening again {pages_back:.2f} s (pages) and {cache_back:.2f} s (key cache) after the restart')
        assert pages_back < BACK_WITHIN and cache_back < BACK_WITHIN
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*loaders)
        pages_listener.cancel()

    assert answers[-1][1] == 200, 'answering again'
    with statements() as sent:
        assert (await client.get(ENDPOINT, headers={'Authorization': f'Bearer {key}'})).status_code == 200
    assert sent == [], 'cached again'
    outage_lines = [record for record in caplog.records if record.name == 'api.widget']
    assert [record.levelname for record in outage_lines] == ['WARNING', 'INFO'], (
        'one line when it starts, one at the end'
    )
    assert not [record for record in caplog.records if record.exc_info], 'no traceback'
    refused = sum(status == 503 for _, status, _ in answers)
    assert f'{refused} requests answered 503' in outage_lines[1].getMessage()
