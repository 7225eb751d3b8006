"""One serving process per data directory while the database is SQLite.

SQLite, NiceGUI's storage files and the process's own memory (open pages, the setup code, caches) are only right
with one process; a second one on the same data directory would half-work. So the serving process holds an
exclusive `flock` on a lock file in the data directory for as long as it lives, and a second one refuses to start.

The kernel drops a `flock` when its holder dies, however it dies: a lock file left behind by a crash blocks nobody,
and is never deleted (deleting it would let two processes each lock a different file of the same name).
"""

import errno
import fcntl
import os
from pathlib import Path

LOCK_FILE_NAME = 'cxt.lock'


class DataDirInUse(RuntimeError):
    """Another live process holds the data directory; the message says which and what to do instead."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f' (pid {pid})' if pid else ''
        super().__init__(
            f'Another CX Toolbox Dashboard process is already using {data_dir}{holder}. '
            'Run one process per data directory, or use PostgreSQL (CXT_DATABASE_URL) for several.'
        )
        self.pid = pid


class DataDirLock:
    """A held lock on a data directory; released by `release()` or when the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor of the open file drops its flock
            self._fd = None


_held: DataDirLock | None = None  # the serving process's lock: kept referenced for the process's lifetime


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Take the data directory for this process (writing its pid into the lock file); raises DataDirInUse when a live
    process already has it."""
    data_dir = data_dir.resolve()
    path = data_dir / LOCK_FILE_NAME
    # Not inheritable (Python's default): a child process must not keep the lock after this process is gone.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DataDirInUse(data_dir, _holder_pid(path)) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
    return DataDirLock(path, fd)


def hold_data_dir_or_exit(*, data_dir: Path, database_url: str) -> None:
    """For the serving process at start-up: on SQLite, hold the data directory until the process ends, or exit with
    the one line that says another process has it. A networked database allows several processes: nothing to do."""
    global _held
    if not database_url.startswith('sqlite') or _held is not None:
        return
    try:
        _held = lock_data_dir(data_dir)
    except DataDirInUse as error:
        raise SystemExit(str(error)) from None


def _holder_pid(path: Path) -> int | None:
    """The pid the holder wrote, or None when it cannot be read (the holder may be between truncate and write)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
