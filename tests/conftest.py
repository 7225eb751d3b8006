"""Every test gets its own data dir and database; bcrypt runs at a low cost so the suite stays quick."""

import functools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from nicegui import context
from nicegui.testing import User
from nicegui.testing.user_navigate import UserNavigate
from nicegui.testing.user_notify import UserNotify

from services import config, db, key_cache
from services.identity import auth
from tests.oidc_provider import OidcProvider
from tests.postgres_server import PostgresServer, find_bin_dir


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / 'data'
    for name in list(__import__('os').environ):
        if name.startswith('CXT_'):
            monkeypatch.delenv(name)
    monkeypatch.setenv('CXT_DATA_DIR', str(data_dir))
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    # Cost 12 is the product default (tests/services/identity/test_auth.py checks it); 4 keeps hundreds of hashes fast.
    monkeypatch.setattr(auth, 'BCRYPT_ROUNDS', 4)
    yield data_dir


# The services' and API tests run once on each engine the product supports. Elsewhere (UI, security, browser tests)
# `database` is SQLite only: those tests are about pages and processes, not about the engine underneath.
ENGINES = ('sqlite', 'postgresql')
ON_EVERY_ENGINE = ('services', 'api')  # folders under tests/


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers',
        'sqlite_only(reason): the test is about SQLite itself (its file, locking, WAL), so `database` is SQLite only',
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if 'database' not in metafunc.fixturenames or metafunc.definition.get_closest_marker('sqlite_only'):
        return
    folder = Path(metafunc.definition.path).relative_to(Path(__file__).parent).parts[0]
    if folder in ON_EVERY_ENGINE:
        metafunc.parametrize('database', ENGINES, indirect=True)


@pytest.fixture
def database(
    request: pytest.FixtureRequest, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A migrated database for service and API tests: SQLite in this test's data dir, or (in tests/services and
    tests/api, as the second run of each test) a fresh PostgreSQL database on the run's throwaway server."""
    engine_name = getattr(request, 'param', 'sqlite')
    if engine_name == 'postgresql':
        # Asked for only here, so a run of SQLite tests alone never starts a PostgreSQL server.
        server: PostgresServer = request.getfixturevalue('postgres')
        monkeypatch.setenv('CXT_DATABASE_URL', migrated_copy(server))
        # This test process is the only one on its database and its key cache does not listen: no other process's
        # cache to wait for after a rotation (services/key_cache.py; the two-process tests keep the 2 s bound).
        monkeypatch.setattr(key_cache, 'CONFIRM_BOUND', 0.0)
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    assert engine.dialect.name == engine_name
    yield
    engine.dispose()


_templates: dict[Path, str] = {}  # server root -> name of a database migrated once on it


def migrated_copy(server: PostgresServer) -> str:
    """A new database already at the schema head, copied from one migrated once per server (CREATE DATABASE ...
    TEMPLATE costs a fraction of running the migrations for every test); returns its SQLAlchemy URL. The migrations
    themselves still run on PostgreSQL once per server, to make the template."""
    import psycopg
    from psycopg import sql

    if server.root not in _templates:
        url = server.create_database()
        db.init_database(url).dispose()  # no connection may stay open on a template
        _templates[server.root] = url.rsplit('/', 1)[1]
    name = f'cxt_{uuid.uuid4().hex[:12]}'
    with psycopg.connect(
        host='127.0.0.1', port=server.port, user='postgres', dbname='postgres', autocommit=True
    ) as connection:
        statement = sql.SQL('CREATE DATABASE {} TEMPLATE {}')
        connection.execute(statement.format(sql.Identifier(name), sql.Identifier(_templates[server.root])))
    return f'postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}'


@pytest.fixture(scope='session')
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the whole run (each test makes its own database on it; a test
    that stops or breaks a server defines a `postgres` of its own)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip('PostgreSQL is not installed (.ci/run installs it)')
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def oidc_provider() -> Iterator[OidcProvider]:
    """A real OpenID Connect provider (panva's oidc-provider under Node, tests/oidc_provider/) on 127.0.0.1 for the
    whole run; started only when a test asks for it."""
    provider = OidcProvider().start()
    yield provider
    provider.stop()


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


@pytest.fixture(autouse=True)
def navigation_and_notices_stay_in_their_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """NiceGUI's simulation points `ui.navigate` and `ui.notify` at whichever simulated browser the test touched last,
    so with two browsers a page's `ui.navigate.to` (after a sign-in, a sign-out) or its notification ("API key
    generated") could land in the other one while the test waits on it (seen under load). A real browser navigates
    and notifies the page that asked: so does this."""
    browsers: list[User] = []
    created = User.__init__

    def init(self: User, *args: object, **kwargs: object) -> None:
        created(self, *args, **kwargs)  # type: ignore[arg-type]
        browsers.append(self)

    def owner_of_asking_page() -> User | None:
        try:
            asking = context.client
        except RuntimeError:  # not inside a page: as NiceGUI does
            return None
        # object.__getattribute__: a User's own attribute access would re-point `ui.navigate` and `ui.notify`.
        return next((b for b in browsers if object.__getattribute__(b, 'client') is asking), None)

    navigate = UserNavigate.to
    notify = UserNotify.__call__

    def to(self: UserNavigate, target: object, new_tab: bool = False) -> None:
        owner = owner_of_asking_page()
        navigate(object.__getattribute__(owner, 'navigate') if owner else self, target, new_tab)  # type: ignore[arg-type]

    def call(self: UserNotify, message: str, **kwargs: object) -> None:
        owner = owner_of_asking_page()
        notify(object.__getattribute__(owner, 'notify') if owner else self, message, **kwargs)

    monkeypatch.setattr(User, '__init__', init)
    monkeypatch.setattr(UserNavigate, 'to', to)
    monkeypatch.setattr(UserNotify, '__call__', call)
