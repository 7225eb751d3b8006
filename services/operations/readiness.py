"""Whether this process can save right now, for `/api/ready` (`/api/health` only says that the process answers).

Ready means: the database answers a write, the SQLite file this process has open is still the one at its path, and
the disk the app writes to has room. On SQLite the write is committed and reaches the disk (it rewrites the header's
`user_version` with its own value: no data changes), so a full, failing or read-only filesystem shows here, and the
failure is classified by SQLite's error code, not its message. On PostgreSQL the server answers for its own disk: the
app writes nothing to its local data directory there, so that disk is not judged. A database busy with another
writer is ready: a writer is proof that it can be written.
"""

import logging
import os
import shutil
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from services import db

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 50 * 1024 * 1024  # below this the data directory's disk is about to refuse writes


class NotReady(StrEnum):
    """Why this process cannot save; the words beside each are safe to show to anyone asking."""

    UNREACHABLE = 'unreachable'
    READ_ONLY = 'read-only'
    MISSING = 'missing'
    DISK = 'disk'

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self]


_EXPLANATIONS = {
    NotReady.UNREACHABLE: 'The database is not answering.',
    NotReady.READ_ONLY: 'The database is read-only: nothing can be saved.',
    NotReady.MISSING: 'The database this process opened is gone (deleted or replaced): restore it and restart.',
    NotReady.DISK: "The data directory's disk is (almost) full.",
}
_FAILURES = {
    db.UNAVAILABLE: NotReady.UNREACHABLE,
    db.READ_ONLY: NotReady.READ_ONLY,
    db.MISSING: NotReady.MISSING,
    db.DISK_FULL: NotReady.DISK,
    db.DISK_ERROR: NotReady.DISK,
    db.GONE: NotReady.MISSING,
}


def check_readiness(*, data_dir: Path) -> NotReady | None:
    """Why this process cannot save right now, or None when it can.

    Opens its own connection, since whether one opens is part of the question: call it off the event loop.
    """
    engine = db.get_engine()
    sqlite_path = engine.url.database if engine.dialect.name == 'sqlite' else None
    if sqlite_path and (refused := _sqlite_file_unready(sqlite_path)):
        return refused
    try:
        with db.read_connection() as connection:
            if _read_only(connection):
                return NotReady.READ_ONLY
            if sqlite_path and _replaced(sqlite_path):
                return NotReady.MISSING
    except DBAPIError as error:
        return _why_not_ready(error)
    if not sqlite_path:
        return None  # PostgreSQL: its own disk refuses its writes (judged above); the app writes nothing locally
    return _disk_unready(sqlite_path)


def _sqlite_file_unready(path: str) -> NotReady | None:
    """What is wrong with the SQLite file's place, judged before connecting."""
    if not os.path.exists(path):
        return NotReady.MISSING  # a connection would create an empty file there
    if _read_only_filesystem(path):
        return NotReady.READ_ONLY  # SQLite cannot even open its WAL index there: it would say `cannot open`
    return None


def _why_not_ready(error: DBAPIError) -> NotReady:
    described = db.describe_failure(error)
    if described not in _FAILURES:
        log.warning('readiness check failed: %s', error)
        return NotReady.UNREACHABLE
    return _FAILURES[described]


def _disk_unready(path: str) -> NotReady | None:
    try:
        free = shutil.disk_usage(Path(path).parent).free
    except FileNotFoundError:
        return NotReady.MISSING
    return NotReady.DISK if free < MIN_FREE_BYTES else None


def _read_only_filesystem(path: str) -> bool:
    try:
        return bool(os.statvfs(Path(path).parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _read_only(connection: Connection) -> bool:
    """Whether a write would be refused; raises the database's error when it cannot even be asked."""
    if connection.dialect.name != 'sqlite':
        # A read-only server (a standby, default_transaction_read_only) says so without a write being tried.
        connection.exec_driver_sql('SELECT version_num FROM alembic_version').first()
        return connection.exec_driver_sql('SHOW transaction_read_only').scalar() == 'on'
    # SQLite tells only by refusing a write, and a full or failing disk only when the write reaches it: rewrite the
    # header's user_version with its own value (SQLite writes the page even so; an UPDATE to the same value is skipped)
    # and commit. It gives up at once if another writer holds the lock (BUSY): that writer proves the database works.
    try:
        with db.without_lock_wait(connection):
            try:
                version = connection.exec_driver_sql('PRAGMA user_version').scalar()
                connection.exec_driver_sql(f'PRAGMA user_version = {int(version or 0)}')
                connection.commit()
            except DBAPIError:
                connection.rollback()  # before the lock wait is put back on this connection
                raise
    except DBAPIError as error:
        if db.describe_failure(error) != db.BUSY:
            raise
    return False


def _replaced(path: str) -> bool:
    """Whether a file this process has open at `path` is no longer the file there (it was deleted, or replaced).

    Writes to a deleted file succeed and are lost with it, so SQLite never notices: compare what this process's open
    descriptors point at (Linux's /proc/self/fd) with what is at the path now. Elsewhere only existence is checked.
    """
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return True
    real = os.path.realpath(path)
    try:
        entries = list(os.scandir('/proc/self/fd'))
    except OSError:
        return False
    for entry in entries:
        try:
            target = os.readlink(entry.path)
            if target not in (real, f'{real} (deleted)'):
                continue
            opened = os.stat(entry.path)  # follows the link to the open file, deleted or not
        except OSError:
            continue  # a descriptor closed meanwhile
        if (opened.st_dev, opened.st_ino) != (current.st_dev, current.st_ino):
            return True
    return False
