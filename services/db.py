"""The database engine, the transactions callers open, and start-up migrations.

Who owns a transaction: the caller. The UI's action helper (`ui/actions.py`) and the API routes open one scope per
step, off the event loop, and pass the session down to the services. Services never open a session, commit or roll
back. Where a slow outside call (bcrypt, SMTP, Stripe) sits between two database steps, the service offers the
steps as separate functions and the caller runs them in order, each in its own scope, with the slow call between
them outside any transaction, so no database lock is held while it runs.

Reads and writes are different transactions: `read_scope()` starts a plain (deferred) `BEGIN`, which on SQLite
never waits for a writer, and is always rolled back; `write_scope()` starts `BEGIN IMMEDIATE` on SQLite, so writers
queue up front instead of losing read-modify-write updates, and commits when its block ends.

Neither may be opened on a thread that runs an event loop: a wait there (a writer holding SQLite for seconds)
would freeze every open page, so it raises `DatabaseOnEventLoop` instead.

Who waits for whom. On SQLite BEGIN IMMEDIATE serializes every writer of the file, and none of what follows matters
there. On PostgreSQL writers run side by side at READ COMMITTED (each statement sees what was committed before it
began): each read-modify-write takes the lock that guards just what it changes, so writes of different organizations
and accounts never wait for each other. The audit of every write in services, guard by guard:

guard                               what it keeps right (service functions)
----------------------------------  -----------------------------------------------------------------------------
organization row, FOR NO KEY        one active key (`api_keys` generate, rotate, revoke old key); the last admin
UPDATE (`team.organizations.        stays (`members` change role, remove); the daily limit and one pending invite
lock_organization`)                 per address (`invitations` invite, resend, revoke); `update_subdomains`;
                                    the requirements (`two_factor.set_requirement`, `single_sign_on.
                                    set_requirement`); one Stripe customer (`billing.store_customer`) and the
                                    subscription's state (webhook events, via `billing._organization_for`)
account: advisory lock on the       one app and one set of recovery codes (`two_factor` begin/confirm enrolment,
email (`lock_account`)              new recovery codes, turn off, reset by an admin or the command line); at most
                                    10 passkeys (`passkeys.add_passkey`); 5 reset links an hour (`password_reset.
                                    _issue`); one account per email (invitation accepted, `single_sign_on.sign_in`
                                    joining, `operators.create_admin`)
named advisory lock (`lock`)        setup happens once (`auth.create_first_admin`, 'first-run'); one link per
                                    provider account (`single_sign_on.sign_in`, 'sso:<issuer>:<subject>')
throttle key: advisory lock         attempts counted and claimed one at a time (`attempts.claim`, its own lock);
(`attempts.claim`)                  behind it one account's codes: TOTP `last_used_step`, `code_lock` failures
the row, SELECT ... FOR UPDATE      a handoff code trades once (`handoff.redeem`); a recovery code is used once;
(a waiter re-reads the row when     the app's `last_used_step`; the passkey's sign count (`passkeys.sign_in`);
the holder commits, and skips it    `code_lock.count_failure`; a send's outcome against a resend (`invitations.
if it no longer matches)            record_delivery`); a sign-in round trip's state taken once (`oidc.StateStore`);
                                    a provider link's last use against a removal (`single_sign_on.sign_in`)
conditional UPDATE/DELETE,          an invitation accepted once; a reset link used once (`reset_password`); a
rowcount checked                    pending sign-in ends once (`two_factor` code, passkey, set-up steps);
                                    `invitations.mark_interrupted_sends`
unique key (the second insert       a Stripe event applied once (`billing.handle_event`: `stripe_event.id`, the
fails; its transaction rolls back)  webhook answers the duplicate as already seen); `user.email`, one active
                                    `api_key` per organization, `passkey.credential_id` as the last line
atomic upsert (count + excluded)    `key_traffic.flush` (rows in key and hour order: no deadlock)
none needed: inserts, deletes,      audit events; sessions start and end, touch and password entered (one UPDATE
a value set without reading it      each: a session ended meanwhile is not written); `begin_pending`; attempts
                                    succeeded, unlock, prune; `code_lock.clear`; `credentials.forget_all`;
(the last writer wins, as on        `auth.change_password`; `passkeys.remove_passkey`; `alerts.
SQLite)                             set_alerts_enabled`; `invitations.beat`; housekeeping; a key's last use

Locks are taken in one order, so writers never wait for each other in a circle: the organization, a named lock, the
account, a throttle key, then rows (the webhook's new `stripe_event` row before its organization waits on nobody
but a duplicate of itself). What a lock guards is read after it is taken; so is an admin's role where the
organization's lock is taken (first thing, so a change of role or a removal that commits while the action waits is
seen). A writer that waits longer than `SQLITE_BUSY_TIMEOUT_MS` for any lock is told the database is busy, as on
SQLite.
"""

import asyncio
import errno
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from services.db_errors import Failure, classify

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / 'migrations'

_engine: Engine | None = None
READ_ONLY_OPTION = 'cxt_read_only'
SQLITE_BUSY_TIMEOUT_MS = 15_000


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE transactions.

    A networked database gets a pool of `pool_size` connections (default: `CXT_DATABASE_POOL_SIZE` when the settings
    are configured, else 10), opened as needed and kept; no overflow beyond it, and a request that finds them all busy
    waits up to 10 s (the widget API then answers 503). Pre-ping stays: it costs a round trip per checkout, which the
    widget API now pays only on a cache miss (services/key_cache.py), and it spares a request the dead connection a
    database restart leaves in the pool.
    """
    if not url.startswith('sqlite'):
        return create_engine(
            url, pool_pre_ping=True, pool_size=pool_size or _configured_pool_size(), max_overflow=0, pool_timeout=10
        )
    engine = _sqlite_engine(url)
    _started_files.pop(_file_of(engine) or '', None)  # a new engine may create its file, on its first connection

    @event.listens_for(engine, 'begin')
    def _on_begin(connection: Any) -> None:
        # Deferred transactions lose read-modify-write updates under concurrency; IMMEDIATE serializes writers.
        # Pure readers (the widget API's lookup) opt out so they never wait for the write lock.
        deferred = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql('BEGIN' if deferred else 'BEGIN IMMEDIATE')

    # Held readers (hot_read_connection) must not outlive their engine.
    event.listen(engine, 'engine_disposed', _release_readers)
    return engine


def _configured_pool_size() -> int:
    from services.config import current_settings

    try:
        return current_settings().database_pool_size
    except RuntimeError:
        return 10


def _sqlite_engine(url: str | URL, **kwargs: Any) -> Engine:
    engine = create_engine(url, connect_args={'check_same_thread': False, 'timeout': 15}, **kwargs)

    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's 'begin' event issue BEGIN itself, so it can take the write lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA foreign_keys=ON')
        cursor.execute(f'PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}')
        cursor.execute('PRAGMA synchronous=NORMAL')
        cursor.close()
        if path is not None:
            _started_files.setdefault(path, _identity(path))

    path = _file_of(engine)
    if path is not None:

        @event.listens_for(engine, 'do_connect')
        def _never_create_again(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
            # Once this process has opened its database, a connection never creates an empty one in its place (the
            # file deleted under it): restarting on that empty file would offer /setup to the first comer.
            if path in _started_files:
                cargs[0] = f'file:{quote(path)}?mode=rw'
                cparams['uri'] = True

    return engine


# The SQLite files this process opened, each with the identity (device, inode) it had then: a write checks that the
# file at the path is still that one (see _check_database_file).
_started_files: dict[str, tuple[int, int] | None] = {}


def _file_of(engine: Engine) -> str | None:
    database = engine.url.database
    return None if not database or database == ':memory:' or database.startswith('file:') else database


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


class DatabaseGone(RuntimeError):
    """The SQLite file this process started with was deleted or replaced: a write would go to a file nobody keeps."""


def _check_database_file(engine: Engine) -> None:
    """Refuse to write when the SQLite file at the path is no longer the one this process opened (one `stat`).

    Writes to a deleted file succeed and are lost with it, and SQLite never notices: without this a person is told
    `saved` and the change is gone at the next restart."""
    path = _file_of(engine) if engine.dialect.name == 'sqlite' else None
    if path is None or path not in _started_files:
        return
    if _identity(path) != _started_files[path]:
        raise DatabaseGone(f'{path} was deleted or replaced after this process opened it')


def init_database(url: str) -> Engine:
    """Create the process's engine and bring the schema up to date."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(url)
    run_migrations(_engine)
    return _engine


def get_engine() -> Engine:
    if _engine is None:
        raise RuntimeError('init_database() has not been called')
    return _engine


MIGRATION_LOCK_KEY = 0x43_58_54_4D  # 'CXTM': the PostgreSQL advisory lock every starting process migrates under


def run_migrations(engine: Engine) -> None:
    """Bring the schema to head; processes starting together on one PostgreSQL database take turns.

    A database already at head is the usual start: that is one query, and Alembic is not even imported (it would stay
    in memory for the life of the process, ~12 MB of the 120 MB budget).
    """
    with engine.begin() as connection:
        if connection.dialect.name == 'postgresql':
            # Without it, processes starting together on an empty database all create the tables and all but one
            # fail (UniqueViolation on pg_type). A transaction lock is released by the commit that publishes the
            # schema, so the next process finds it at head. (SQLite's BEGIN IMMEDIATE already serializes.)
            connection.exec_driver_sql(f'SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})')
        current, head = schema_revision(connection), head_revision()
        if current == head:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option('script_location', str(MIGRATIONS_DIR))
        config.attributes['connection'] = connection
        command.upgrade(config, 'head')
        log.info('Database schema migrated from %s to %s', current or 'an empty database', head)


def head_revision() -> str:
    """The newest migration's revision: files are named `<revision>_<slug>.py` with revisions 0001, 0002, … in order
    (tests/services/test_db.py checks this against Alembic's own idea of head)."""
    return max(path.name.split('_', 1)[0] for path in (MIGRATIONS_DIR / 'versions').glob('[0-9][0-9][0-9][0-9]_*.py'))


def schema_revision(connection: Connection) -> str | None:
    """The revision this database is at, or None before its first migration."""
    if not inspect(connection).has_table('alembic_version'):
        return None
    return connection.exec_driver_sql('SELECT version_num FROM alembic_version').scalar()


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A pooled connection for short read-mostly work outside the ORM (the widget API's hot path)."""
    with get_engine().connect().execution_options(**{READ_ONLY_OPTION: True}) as connection:
        yield connection


_held = threading.local()  # this thread's (engine, held reader)
_held_lock = threading.Lock()
_held_by_thread: dict[threading.Thread, tuple[Engine, Connection]] = {}
_reader_engines: dict[Engine, Engine] = {}


@contextmanager
def hot_read_connection() -> Iterator[Connection]:
    """An autocommit connection for the widget API's per-request lookup (and its once-a-minute last-used write).

    Autocommit: no BEGIN/ROLLBACK around the lookup, and every statement sees everything committed before it,
    so a key rotated away a moment ago is refused by the very next request. On SQLite the connection is held
    per thread, outside the shared pool (opening one per request costs more than the lookup itself); on a
    networked database it is a pooled checkout, since those calls run on short-lived worker threads.
    """
    engine = get_engine()
    if engine.dialect.name != 'sqlite':
        with engine.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
            yield connection
        return
    held = getattr(_held, 'state', None)
    if held is None or held[0] is not engine or held[1].closed:
        held = _hold_reader(engine)
    try:
        # No commit afterwards: in autocommit mode SQLAlchemy's transaction is bookkeeping only; nothing is open
        # on the database between statements.
        yield held[1]
    except BaseException:
        held[1].close()  # the next call opens a fresh one
        raise


@contextmanager
def without_lock_wait(connection: Connection) -> Iterator[None]:
    """On SQLite, make a write fail at once instead of waiting for another writer (for best-effort writes that
    run on the event loop, where a 15 s wait would freeze every page). Elsewhere a no-op."""
    if connection.dialect.name != 'sqlite':
        yield
        return
    connection.exec_driver_sql('PRAGMA busy_timeout=0')
    try:
        yield
    finally:
        connection.exec_driver_sql(f'PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}')


def change_marker(connection: Connection) -> int | None:
    """A number that changes whenever another connection commits to the database, or None if there is none.

    Lets a per-connection cache of query results stay exact: tag entries with the marker read before the query
    and drop them all when it changes. Only SQLite connections in autocommit mode (hot_read_connection) have
    one here: `PRAGMA data_version`, read on the driver connection (a few microseconds), which changes on every
    commit by any other connection or process. Elsewhere it is None, and callers must not cache.
    """
    if connection.dialect.name != 'sqlite' or connection.get_execution_options().get('isolation_level') != 'AUTOCOMMIT':
        return None
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None, 'an open connection has its DBAPI connection'
    return driver_connection.execute('PRAGMA data_version').fetchone()[0]


def _hold_reader(engine: Engine) -> tuple[Engine, Connection]:
    """This thread's held reader: from an unpooled twin of the engine, so held connections never use up the pool."""
    with _held_lock:
        reader_engine = _reader_engines.get(engine)
        if reader_engine is None:
            reader_engine = _reader_engines[engine] = _sqlite_engine(engine.url, poolclass=NullPool)
        for thread in [thread for thread in _held_by_thread if not thread.is_alive()]:
            _held_by_thread.pop(thread)[1].close()
        previous = _held_by_thread.pop(threading.current_thread(), None)
        held = (engine, reader_engine.connect().execution_options(isolation_level='AUTOCOMMIT'))
        _held_by_thread[threading.current_thread()] = held
    if previous is not None:
        previous[1].close()
    _held.state = held
    return held


def _release_readers(engine: Engine) -> None:
    """Close every thread's held reader of `engine` (when the engine is disposed)."""
    with _held_lock:
        for thread, (owner, connection) in list(_held_by_thread.items()):
            if owner is engine:
                del _held_by_thread[thread]
                connection.close()
        reader_engine = _reader_engines.pop(engine, None)
    if reader_engine is not None:
        reader_engine.dispose()


class DatabaseOnEventLoop(RuntimeError):
    """A database session was opened on a thread that runs an event loop (a programming error)."""


def _refuse_on_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # a worker thread, a script or a synchronous test: fine
    raise DatabaseOnEventLoop('a database session was opened on the event loop; run it with run.io_bound')


@contextmanager
def read_scope() -> Iterator[Session]:
    """A read transaction (plain BEGIN: never queues behind a writer); rolled back when the block ends."""
    _refuse_on_event_loop()
    engine = get_engine().execution_options(**{READ_ONLY_OPTION: True})
    # Closing the session ends the transaction without a commit and leaves what was read usable (a rollback would
    # expire it).
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def write_scope() -> Iterator[Session]:
    """A write transaction: committed when the block ends, rolled back on an exception.

    On SQLite BEGIN IMMEDIATE takes the database's write lock, so writers take turns. On PostgreSQL writers run side
    by side: each read-modify-write takes the lock that guards it (see the table at the top of this module), and a
    lock waited for longer than SQLite's busy timeout tells the writer the database is busy, as on SQLite.
    """
    _refuse_on_event_loop()
    engine = get_engine()
    _check_database_file(engine)
    with Session(engine, expire_on_commit=False) as session:
        try:
            if engine.dialect.name == 'postgresql':
                session.connection().exec_driver_sql(f"SET LOCAL lock_timeout = '{SQLITE_BUSY_TIMEOUT_MS}ms'")
            yield session
            _check_database_file(engine)
            session.commit()
        except BaseException:
            session.rollback()
            raise


def lock(*, session: Session, name: str) -> None:
    """Hold the lock called `name` until the caller's write transaction ends, from the moment this returns: a
    transaction-scoped advisory lock on a 64-bit hash of the name on PostgreSQL. On SQLite, BEGIN IMMEDIATE already
    serializes writers; SQLAlchemy sends it with the transaction's first statement, so the transaction is begun here
    (what follows, such as reading the clock, then happens inside the lock, not while queued behind another writer)."""
    connection = session.connection()  # begins the transaction: on SQLite, waits for and takes the write lock
    if connection.dialect.name == 'postgresql':
        statement = text('SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))')
        connection.execute(statement, {'name': name})


def lock_account(*, session: Session, email: str) -> None:
    """Serialize the changes to one account's credentials (or its creation): its email names it before it exists."""
    lock(session=session, name=f'account:{email.strip().lower()}')


# What a person is told when the database or its disk fails; `None` for anything else (a bug: log it with a trace).
DISK_FULL = "Could not save: the server's disk is full. Nothing was changed."
READ_ONLY = "Could not save: the server's database is read-only. Nothing was changed."
BUSY = 'Could not save: the database is busy with another change. Nothing was changed; try again in a moment.'
MISSING = "The server's database cannot be opened (is its data directory still there?). Nothing was changed."
GONE = (
    "Could not save: the server's database file was deleted or replaced while it ran. Nothing was changed; "
    'the server must be restarted (after a restore).'
)
DISK_ERROR = "Could not save: the server's disk failed to write (I/O error). Nothing was changed."
UNAVAILABLE = 'The database is not answering. Nothing was changed; try again in a moment.'

_ERRNO_MESSAGES = {errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL, errno.EROFS: READ_ONLY, errno.ENOENT: MISSING}
_FAILURE_MESSAGES = {
    Failure.BUSY: BUSY,
    Failure.READ_ONLY: READ_ONLY,
    Failure.DISK_FULL: DISK_FULL,
    Failure.DISK_ERROR: DISK_ERROR,
    Failure.MISSING: MISSING,
    Failure.MOVED: GONE,
    Failure.UNAVAILABLE: UNAVAILABLE,
}


def describe_failure(error: BaseException) -> str | None:
    """A sentence for a person when `error` is the database or its disk failing (full, read-only, locked past its
    timeout, missing, unreachable); None when it is anything else."""
    if isinstance(error, DatabaseGone):
        return GONE
    if isinstance(error, OSError):
        return _ERRNO_MESSAGES.get(error.errno or 0)
    failure = classify(error)
    return None if failure is None else _FAILURE_MESSAGES[failure]
