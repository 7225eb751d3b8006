"""`/api/ready`: 200 while this process can save; 503 with the reason when it cannot. `/api/health` stays liveness."""

import contextlib
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import event

from api import create_api_app
from services import config, db
from services.operations import readiness
from services.operations.readiness import NotReady
from tests.postgres_server import PostgresServer, find_bin_dir

READY = {'status': 'ready'}


def not_ready(reason: NotReady) -> dict[str, str]:
    return {'status': 'not_ready', 'reason': reason.value, 'message': reason.explanation}


def database_file(data_dir: Path) -> Path:
    return data_dir / 'cxt.sqlite3'


async def test_a_healthy_instance_is_ready(client: httpx.AsyncClient) -> None:
    response = await client.get('/api/ready')
    assert (response.status_code, response.json()) == (200, READY)


@pytest.mark.sqlite_only('SQLite files deleted under the process')
async def test_a_deleted_database_file_is_missing(client: httpx.AsyncClient, isolated_environment: Path) -> None:
    assert (await client.get('/api/ready')).status_code == 200
    for path in isolated_environment.glob('cxt.sqlite3*'):
        path.unlink()
    response = await client.get('/api/ready')
    assert (response.status_code, response.json()) == (503, not_ready(NotReady.MISSING))
    assert not database_file(isolated_environment).exists(), 'the check must not create an empty database there'
    assert (await client.get('/api/health')).status_code == 200, 'the process still answers: it is alive'


@pytest.mark.sqlite_only('an SQLite file replaced under the process')
async def test_a_database_file_replaced_under_the_process_is_missing(
    client: httpx.AsyncClient, isolated_environment: Path
) -> None:
    """A copy put back at the same path (a restore): this process still writes to the file it opened, now deleted."""
    assert (await client.get('/api/ready')).status_code == 200
    path = database_file(isolated_environment)
    copy = path.with_name('copy.sqlite3')
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    copy.replace(path)
    response = await client.get('/api/ready')
    assert (response.status_code, response.json()) == (503, not_ready(NotReady.MISSING))


@pytest.mark.sqlite_only('PRAGMA query_only (PostgreSQL read-only: test_a_read_only_postgresql_database_is_read_only)')
async def test_a_read_only_database_is_read_only(client: httpx.AsyncClient) -> None:
    engine = db.get_engine()
    engine.dispose()  # every connection from now on is opened read-only

    def read_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute('PRAGMA query_only=ON')

    event.listen(engine, 'connect', read_only)
    response = await client.get('/api/ready')
    assert (response.status_code, response.json()) == (503, not_ready(NotReady.READ_ONLY))
    assert (await client.get('/api/health')).status_code == 200


@pytest.mark.sqlite_only("another connection holds SQLite's write lock")
async def test_a_database_busy_with_another_writer_is_ready_at_once(
    client: httpx.AsyncClient, isolated_environment: Path
) -> None:
    """Another writer proves the database can be written; the check does not queue behind it."""
    writer = sqlite3.connect(database_file(isolated_environment), isolation_level=None)
    try:
        writer.execute('BEGIN IMMEDIATE')  # SQLite's write lock, held until the rollback
        started = time.monotonic()
        response = await client.get('/api/ready')
        waited = time.monotonic() - started
    finally:
        writer.rollback()
        writer.close()
    assert (response.status_code, response.json()) == (200, READY)
    assert waited < 2, f'the check waited {waited:.1f} s for the writer'


@pytest.mark.sqlite_only(
    "the disk judged is the SQLite database's; PostgreSQL answers for its own "
    '(tests/services/operations/test_readiness_faults.py::test_postgresql_readiness_does_not_judge_the_local_data_directory_disk)'
)
async def test_a_disk_below_the_threshold_is_disk(
    client: httpx.AsyncClient, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = shutil.disk_usage(isolated_environment).free
    monkeypatch.setattr(readiness, 'MIN_FREE_BYTES', free + 10**12)
    response = await client.get('/api/ready')
    assert (response.status_code, response.json()) == (503, not_ready(NotReady.DISK))
    monkeypatch.setattr(readiness, 'MIN_FREE_BYTES', 1)
    assert (await client.get('/api/ready')).status_code == 200


def test_the_production_threshold_is_50_mb() -> None:
    assert readiness.MIN_FREE_BYTES == 50 * 1024 * 1024


async def test_the_check_runs_off_the_event_loop(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    check = readiness.check_readiness

    def recorded(*, data_dir: Path) -> NotReady | None:
        threads.append(threading.current_thread())
        return check(data_dir=data_dir)

    monkeypatch.setattr(readiness, 'check_readiness', recorded)
    assert (await client.get('/api/ready')).status_code == 200
    assert threads and threads[0] is not threading.current_thread()


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: the tests stop it."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip('PostgreSQL is not installed (.ci/run installs it)')
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):  # a test stopped it already (and its files are gone)
        server.stop()


@pytest.fixture
async def pg_client(
    postgres: PostgresServer, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv('CXT_DATABASE_URL', postgres.create_database())
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    assert engine.dialect.name == 'postgresql'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(create_api_app()), base_url='http://test') as client:
        yield client
    engine.dispose()


async def test_postgresql_is_ready_until_it_stops_then_unreachable(
    pg_client: httpx.AsyncClient, postgres: PostgresServer
) -> None:
    response = await pg_client.get('/api/ready')
    assert (response.status_code, response.json()) == (200, READY)
    postgres.stop()
    response = await pg_client.get('/api/ready')
    assert (response.status_code, response.json()) == (503, not_ready(NotReady.UNREACHABLE))


async def test_a_read_only_postgresql_database_is_read_only(
    pg_client: httpx.AsyncClient, postgres: PostgresServer
) -> None:
    name = db.get_engine().url.database
    assert name is not None
    with psycopg.connect(
        host='127.0.0.1', port=postgres.port, user='postgres', dbname='postgres', autocommit=True
    ) as c:
        c.execute(sql.SQL('ALTER DATABASE {} SET default_transaction_read_only = on').format(sql.Identifier(name)))
    db.get_engine().dispose()  # the setting applies to new connections, as after a failover to a standby
    response = await pg_client.get('/api/ready')
    assert (response.status_code, response.json()) == (503, not_ready(NotReady.READ_ONLY))


async def test_health_is_the_process_running_even_with_the_database_down(
    pg_client: httpx.AsyncClient, postgres: PostgresServer
) -> None:
    """A liveness probe that failed with the database would have every process restarted during an outage."""
    postgres.stop()
    response = await pg_client.get('/api/health')
    assert (response.status_code, response.json()) == (200, {'status': 'ok'})
    assert (await pg_client.get('/api/ready')).status_code == 503
