"""Which database errors mean "the database is away" (answer 503 and retry), judged by SQLSTATE, not message text."""

import sqlite3

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# PostgreSQL SQLSTATEs (and classes) of a server that cannot be reached or cannot serve now: connection exceptions
# (08), too many connections (53300), admin or crash shutdown, starting up or shutting down (57P01-57P03).
_UNAVAILABLE_CLASSES = ('08',)
_UNAVAILABLE_STATES = {'53300', '57P01', '57P02', '57P03'}
_SQLITE_UNAVAILABLE = ('SQLITE_CANTOPEN', 'SQLITE_IOERR', 'SQLITE_NOTADB')
READ_ONLY_STATE = '25006'  # read_only_sql_transaction: a standby, or default_transaction_read_only


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error (psycopg's `sqlstate`), or None."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    state = getattr(orig, 'sqlstate', None)
    return state if isinstance(state, str) else None


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached or cannot serve now (not a bug, not bad data)."""
    if isinstance(error, PoolTimeout):
        return True  # every pooled connection busy past the pool's timeout
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        name = getattr(orig, 'sqlite_errorname', '')
        return any(name.startswith(prefix) for prefix in _SQLITE_UNAVAILABLE)
    state = sqlstate(error)
    if state is None:
        # libpq failed before the server said anything (refused, reset, timed out): psycopg gives no SQLSTATE.
        return isinstance(error, OperationalError)
    return state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
