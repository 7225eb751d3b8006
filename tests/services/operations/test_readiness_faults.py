"""Readiness under real filesystem faults: a read-only remount, a full disk, a disk that fails writes, and the disk
that is judged (the database's, not a data directory the app does not write to).

The probe used to make an `UPDATE` that was never committed (and changed no byte), so SQLite never touched the disk:
a full or failing filesystem was `ready`, and a disk I/O error was reported as `missing`."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import config, db
from services.operations import readiness
from services.operations.readiness import NotReady

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of this test's own (the tests run as root in CI; elsewhere they are skipped, saying why)."""
    mount_point = tmp_path / 'mnt'
    mount_point.mkdir()
    command = ['mount', '-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', str(mount_point)]
    mounted = subprocess.run(command, check=False, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (needs root and mount rights): the remount tests need one')
    try:
        yield mount_point
    finally:
        db.get_engine().dispose()
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


@pytest.fixture
def database_on_tmpfs(small_tmpfs: Path, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's SQLite database on the small tmpfs; the data directory stays on the test's own disk."""
    path = small_tmpfs / 'cxt.sqlite3'
    monkeypatch.setenv('CXT_DATABASE_URL', f'sqlite:///{path}')
    settings = config.load_settings()
    config.configure(settings)
    db.init_database(settings.resolved_database_url)
    return path


def check(data_dir: Path) -> NotReady | None:
    return readiness.check_readiness(data_dir=data_dir)


@pytest.mark.sqlite_only('a read-only remount of the filesystem under an SQLite database')
def test_a_read_only_remount_is_read_only(
    database_on_tmpfs: Path, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, 'MIN_FREE_BYTES', 1)
    assert check(isolated_environment) is None
    db.get_engine().dispose()  # the kernel remounts read-only only when no file is open for writing
    subprocess.run(['mount', '-o', 'remount,ro', str(database_on_tmpfs.parent)], check=True)
    assert check(isolated_environment) == NotReady.READ_ONLY
    subprocess.run(['mount', '-o', 'remount,rw', str(database_on_tmpfs.parent)], check=True)
    assert check(isolated_environment) is None


@pytest.mark.sqlite_only('a full filesystem under an SQLite database')
def test_a_full_disk_is_disk_even_below_the_threshold(
    database_on_tmpfs: Path, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, 'MIN_FREE_BYTES', 0)  # only the probe's own write can tell
    assert check(isolated_environment) is None
    with db.read_connection() as connection:
        connection.exec_driver_sql('PRAGMA wal_checkpoint(TRUNCATE)')  # the next commit must grow the WAL
    filler = database_on_tmpfs.parent / 'filler'
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b'x' * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    assert check(isolated_environment) == NotReady.DISK
    filler.unlink()
    assert check(isolated_environment) is None


FAILING_DISK = """
import resource, signal, sys
from pathlib import Path
from services import config, db
from services.operations import readiness
settings = config.load_settings()
config.configure(settings)
db.init_database(settings.resolved_database_url)
readiness.MIN_FREE_BYTES = 0
assert readiness.check_readiness(data_dir=settings.data_dir) is None
with db.read_connection() as connection:
    connection.exec_driver_sql('PRAGMA wal_checkpoint(TRUNCATE)')
# Every write past the first byte of a file now fails (EFBIG): to SQLite, as a failing disk, SQLITE_IOERR_WRITE.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
print(readiness.check_readiness(data_dir=settings.data_dir), flush=True)
"""


@pytest.mark.sqlite_only('a disk that fails SQLite writes (a file size limit)')
def test_a_disk_that_fails_writes_is_disk_not_missing(isolated_environment: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name != 'PYTEST_CURRENT_TEST'}
    ran = subprocess.run(
        [sys.executable, '-c', FAILING_DISK], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )  # a pipe, not a file: the size limit must not cut the output
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == NotReady.DISK


def test_postgresql_readiness_does_not_judge_the_local_data_directory_disk(
    pg_database: str, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the app writes nothing to its data directory: a full local disk there is not `disk`."""
    monkeypatch.setattr(readiness, 'MIN_FREE_BYTES', shutil.disk_usage(isolated_environment).free + 10**12)
    assert check(isolated_environment) is None


@pytest.mark.sqlite_only('an SQLite database outside the data directory')
def test_sqlite_readiness_judges_the_database_disk_not_the_data_directory(
    database_on_tmpfs: Path, isolated_environment: Path
) -> None:
    # The tmpfs has 4 MB, far below the 50 MB threshold; the data directory's disk has room.
    assert shutil.disk_usage(isolated_environment).free > readiness.MIN_FREE_BYTES
    assert check(isolated_environment) == NotReady.DISK
