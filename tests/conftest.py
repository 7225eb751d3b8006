"""Every test gets its own data dir and database; bcrypt runs at a low cost so the suite stays quick."""

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from nicegui.testing import User

from services import auth, config, db
from tests.postgres_server import PostgresServer, find_bin_dir


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / 'data'
    for name in list(__import__('os').environ):
        if name.startswith('CXT_'):
            monkeypatch.delenv(name)
    monkeypatch.setenv('CXT_DATA_DIR', str(data_dir))
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    # Cost 12 is the product default (tests/services/test_auth.py checks it); 4 keeps hundreds of hashes fast.
    monkeypatch.setattr(auth, 'BCRYPT_ROUNDS', 4)
    yield data_dir


@pytest.fixture
def database(isolated_environment: Path) -> Iterator[None]:
    """A migrated SQLite database in this test's data dir, for service and API tests."""
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    yield
    engine.dispose()


@pytest.fixture(scope='module')
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on 127.0.0.1 for one test module (each test makes its own database on it)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip('PostgreSQL is not installed (.ci/run installs it)')
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_database(postgres: PostgresServer, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The services pointed at a fresh, migrated PostgreSQL database; yields its URL."""
    monkeypatch.setenv('CXT_DATABASE_URL', postgres.create_database())
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    assert engine.dialect.name == 'postgresql'
    yield settings.resolved_database_url
    engine.dispose()


# Simulated users (NiceGUI's `user` fixture) wait like a person does: every action runs off the event loop, so what it
# shows appears a moment after the click, later still on a busy machine.
PATIENCE = 50  # attempts, 0.1 s apart: up to 5 s for a page to show (or stop showing) something


@pytest.fixture(autouse=True)
def patient_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(User, 'should_see', functools.partialmethod(User.should_see, retries=PATIENCE))
    monkeypatch.setattr(User, 'should_not_see', functools.partialmethod(User.should_not_see, retries=PATIENCE))
