"""One serving process per data directory on SQLite: a second one refuses to start; a dead holder blocks nobody."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.operations import process_lock
from services.operations.process_lock import LOCK_FILE_NAME, DataDirInUse, hold_data_dir_or_exit, lock_data_dir
from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT

SQLITE_URL = 'sqlite:///somewhere/cxt.sqlite3'


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / 'data'
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def no_held_lock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`hold_data_dir_or_exit` keeps its lock for the process's lifetime: give it back after each test."""
    monkeypatch.setattr(process_lock, '_held', None)
    yield
    if process_lock._held is not None:
        process_lock._held.release()


def test_a_second_lock_on_the_same_data_directory_is_refused_with_the_holders_pid(data_dir: Path) -> None:
    held = lock_data_dir(data_dir)
    with pytest.raises(DataDirInUse) as refused:
        lock_data_dir(data_dir)
    assert refused.value.pid == os.getpid()
    assert str(refused.value) == (
        f'Another CX Toolbox Dashboard process is already using {data_dir.resolve()} (pid {os.getpid()}). '
        'Run one process per data directory, or use PostgreSQL (CXT_DATABASE_URL) for several.'
    )
    held.release()
    lock_data_dir(data_dir).release()


def test_a_lock_file_left_by_a_dead_process_blocks_nobody(data_dir: Path) -> None:
    (data_dir / LOCK_FILE_NAME).write_text('99999999\n')  # as a crash leaves it
    held = lock_data_dir(data_dir)
    assert (data_dir / LOCK_FILE_NAME).read_text() == f'{os.getpid()}\n'
    held.release()


def test_the_lock_goes_with_its_process_however_it_dies(data_dir: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            '-c',
            'import sys, time; from pathlib import Path; from services.operations.process_lock import lock_data_dir; '
            'lock_data_dir(Path(sys.argv[1])); print("held", flush=True); time.sleep(60)',
            str(data_dir),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b'held\n'
        with pytest.raises(DataDirInUse) as refused:
            lock_data_dir(data_dir)
        assert refused.value.pid == holder.pid
        holder.send_signal(signal.SIGKILL)  # no clean-up runs
        holder.wait(timeout=10)
        lock_data_dir(data_dir).release()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_serving_process_exits_with_one_line_when_the_directory_is_taken(data_dir: Path) -> None:
    held = lock_data_dir(data_dir)
    with pytest.raises(SystemExit) as exited:
        hold_data_dir_or_exit(data_dir=data_dir, database_url=SQLITE_URL)
    assert str(exited.value.code).startswith(f'Another CX Toolbox Dashboard process is already using {data_dir}')
    assert '\n' not in str(exited.value.code)
    held.release()
    hold_data_dir_or_exit(data_dir=data_dir, database_url=SQLITE_URL)
    with pytest.raises(DataDirInUse):  # held until the process ends
        lock_data_dir(data_dir)


def test_on_postgresql_several_processes_may_share_a_data_directory(data_dir: Path) -> None:
    held = lock_data_dir(data_dir)
    hold_data_dir_or_exit(data_dir=data_dir, database_url='postgresql+psycopg://postgres@127.0.0.1/cxt')
    assert process_lock._held is None
    held.release()


def test_a_second_app_on_the_same_data_directory_refuses_to_start_and_the_first_keeps_serving(tmp_path: Path) -> None:
    workdirs = [tmp_path / name for name in ('first', 'second', 'third')]
    for workdir in workdirs:
        workdir.mkdir()
    first = AppProcess(REPO_ROOT, workdirs[0]).start()
    shared = {'CXT_DATA_DIR': str(first.data_dir)}
    try:
        second = AppProcess(REPO_ROOT, workdirs[1], env=shared).spawn()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match='the app exited with 1'):
            second.wait_ready()
        refused_after = time.monotonic() - started
        first_pid = int((first.data_dir / LOCK_FILE_NAME).read_text())
        line = (
            f'Another CX Toolbox Dashboard process is already using {first.data_dir.resolve()} (pid {first_pid}). '
            'Run one process per data directory, or use PostgreSQL (CXT_DATABASE_URL) for several.'
        )
        assert second.log().strip().splitlines() == [line]
        assert refused_after < 15, f'refused after {refused_after:.1f} s'
        assert httpx.get(f'{first.url}/api/health', timeout=5).status_code == 200
    finally:
        first.stop()
    third = AppProcess(REPO_ROOT, workdirs[2], env=shared).start()
    try:
        assert httpx.get(f'{third.url}/api/health', timeout=5).status_code == 200
    finally:
        third.stop()
