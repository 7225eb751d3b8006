"""The data directory belongs to the account that runs the app: nobody else on the machine reads the database, the
generated secret or NiceGUI's storage. Checked against the real app process (`main.py`) on fresh and old data dirs."""

import stat
from pathlib import Path

import httpx
import pytest

from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT

DATABASE_FILES = ['cxt.sqlite3', 'cxt.sqlite3-wal', 'cxt.sqlite3-shm']
OLD_STORAGE_FILE = 'nicegui/storage-user-0f6e4cb2-1f11-4f5c-9c0a-64a4a2f5a1de.json'


def test_a_fresh_data_dir_and_everything_in_it_are_private(tmp_path: Path) -> None:
    app = AppProcess(REPO_ROOT, tmp_path).start()
    try:
        httpx.get(f'{app.url}/setup')  # a visitor, nobody signed in: the database is open, WAL and SHM exist
        assert {*DATABASE_FILES, 'secret_key'} <= {path.name for path in app.data_dir.iterdir()}
        assert modes(app.data_dir) == private_modes(app.data_dir)
        # What the process creates later (NiceGUI's storage files, a new WAL) gets the same: owner only.
        assert process_umask(app) == 0o077
    finally:
        app.stop()


def test_a_data_dir_left_open_by_an_older_version_is_closed_at_start(tmp_path: Path) -> None:
    """Before this change the dir was 0755 and the files 0644 (the umask's defaults): the next start tightens them,
    and leaves alone a file in the dir that is not the app's."""
    AppProcess(REPO_ROOT, tmp_path).start().stop()
    data_dir = tmp_path / 'data'
    (data_dir / 'nicegui').mkdir()
    (data_dir / OLD_STORAGE_FILE).write_text('{"last_page": "/"}')
    (data_dir / 'operator-notes.txt').write_text('not the app file')
    for path in [data_dir, *data_dir.rglob('*')]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    app = AppProcess(REPO_ROOT, tmp_path).start()
    try:
        theirs = data_dir / 'operator-notes.txt'
        assert modes(data_dir, skip=theirs) == private_modes(data_dir, skip=theirs)
        assert (data_dir / OLD_STORAGE_FILE).exists()
        assert stat.S_IMODE(theirs.stat().st_mode) == 0o644
    finally:
        app.stop()


def modes(data_dir: Path, *, skip: Path | None = None) -> dict[str, str]:
    """Every path in the data dir (itself included) with its permission bits, e.g. {'.': '0o700'}."""
    paths = [data_dir, *sorted(data_dir.rglob('*'))]
    return {str(p.relative_to(data_dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths if p != skip}


def private_modes(data_dir: Path, *, skip: Path | None = None) -> dict[str, str]:
    """What `modes` should say: directories 0700, files 0600."""
    paths = [data_dir, *sorted(data_dir.rglob('*'))]
    return {str(p.relative_to(data_dir)): oct(0o700 if p.is_dir() else 0o600) for p in paths if p != skip}


def process_umask(app: AppProcess) -> int:
    assert app._process is not None
    status = Path(f'/proc/{app._process.pid}/status')
    if not status.exists():
        pytest.skip('no /proc on this system: the umask of the app cannot be read')
    line = next(line for line in status.read_text().splitlines() if line.startswith('Umask:'))
    return int(line.split()[1], 8)
