"""How a database error is classified: by PostgreSQL's SQLSTATE and SQLite's error name, never by message text."""

import sqlite3
from enum import StrEnum

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# PostgreSQL SQLSTATEs (and classes) of a server that cannot be reached or cannot serve now: connection exceptions
# (08), too many connections (53300), admin or crash shutdown, starting up or shutting down (57P01-57P03).
_UNAVAILABLE_CLASSES = ('08',)
_UNAVAILABLE_STATES = {'53300', '57P01', '57P02', '57P03'}
_SQLITE_UNAVAILABLE = ('SQLITE_CANTOPEN', 'SQLITE_IOERR', 'SQLITE_NOTADB')
READ_ONLY_STATE = '25006'  # read_only_sql_transaction: a standby, or default_transaction_read_only


class Failure(StrEnum):
    """The ways the database or its disk fails that a person is told about (anything else is a bug)."""

    BUSY = 'busy'
    READ_ONLY = 'read-only'
    DISK_FULL = 'disk-full'
    DISK_ERROR = 'disk-error'
    MISSING = 'missing'
    MOVED = 'moved'
    UNAVAILABLE = 'unavailable'


# SQLite's primary result codes (an extended one, e.g. SQLITE_IOERR_WRITE, starts with its primary's name); the
# first match wins, so an extended code with its own meaning comes before its primary.
_SQLITE_FAILURES = (
    ('SQLITE_READONLY_DBMOVED', Failure.MOVED),
    ('SQLITE_FULL', Failure.DISK_FULL),
    ('SQLITE_READONLY', Failure.READ_ONLY),
    ('SQLITE_BUSY', Failure.BUSY),
    ('SQLITE_LOCKED', Failure.BUSY),
    ('SQLITE_CANTOPEN', Failure.MISSING),
    ('SQLITE_NOTADB', Failure.MISSING),
    ('SQLITE_IOERR', Failure.DISK_ERROR),
)
# PostgreSQL: a writer that waited past lock_timeout (55P03), lost a serialization race (40001) or was picked as a
# deadlock's victim (40P01) may simply try again, as on SQLite's busy timeout.
_POSTGRES_FAILURES = {
    '55P03': Failure.BUSY,
    '40001': Failure.BUSY,
    '40P01': Failure.BUSY,
    READ_ONLY_STATE: Failure.READ_ONLY,
    '53100': Failure.DISK_FULL,
    '58030': Failure.DISK_ERROR,
}


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error (psycopg's `sqlstate`), or None."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    state = getattr(orig, 'sqlstate', None)
    return state if isinstance(state, str) else None


def sqlite_name(error: BaseException) -> str | None:
    """SQLite's name for the error (`sqlite_errorname`, e.g. SQLITE_BUSY), or None for anything but SQLite's."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    name = getattr(orig, 'sqlite_errorname', None) if isinstance(orig, sqlite3.Error) else None
    return name if isinstance(name, str) else None


def classify(error: BaseException) -> Failure | None:
    """How the database failed when `error` is its failure (full, read-only, busy, missing, away); None otherwise."""
    if not isinstance(error, DBAPIError):
        return None
    name = sqlite_name(error)
    if name is not None:
        return next((failure for prefix, failure in _SQLITE_FAILURES if name.startswith(prefix)), None)
    state = sqlstate(error)
    if state in _POSTGRES_FAILURES:
        return _POSTGRES_FAILURES[state]
    return Failure.UNAVAILABLE if _postgres_unavailable(error, state) else None


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached or cannot serve now (not a bug, not bad data)."""
    if isinstance(error, PoolTimeout):
        return True  # every pooled connection busy past the pool's timeout
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    name = sqlite_name(error)
    if name is not None:
        return name.startswith(_SQLITE_UNAVAILABLE)
    return _postgres_unavailable(error, sqlstate(error))


def _postgres_unavailable(error: DBAPIError, state: str | None) -> bool:
    if error.connection_invalidated:
        return True
    if state is None:
        # libpq failed before the server said anything (refused, reset, timed out): psycopg gives no SQLSTATE.
        return isinstance(error, OperationalError) and not isinstance(error.orig, sqlite3.Error)
    return state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
