"""Warm start: from `uv run main.py` to the first 200 of `/api/health`, against a bare NiceGUI app started the same way.

Run from the repository root:

    uv run bench/start_time.py             # 5 starts of each, alternating; medians and the ratio
    uv run bench/start_time.py --runs 9
    uv run bench/start_time.py --cold-bytecode   # every start compiles every module from source (no .pyc)

Each start is timed from the moment `uv run ...` is spawned to the first 200 from `/api/health` (polled every 10 ms),
then the process is stopped. The app starts on one temp data dir, migrated by an unreported first start (a warm
start: the database exists and the import caches are hot); the bare app is one `@ui.page('/')` and an `/api/health`
route, run by `ui.run` with the same host, port choice and `reload=False`. Target: app median <= 1.5 s.

"Warm" includes Python's bytecode cache: both run with PYTHONPYCACHEPREFIX pointing into the temp dir (filled by the
first start, removed at the end, the checkout and .venv untouched), and without PYTHONDONTWRITEBYTECODE, which would
make every start compile NiceGUI, SQLAlchemy and the app from source again (over a second on a busy machine: a cold
start, not what a restarted server does). `--cold-bytecode` measures that case instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 1.5
BARE_APP = """
import os
from nicegui import app, ui


@app.get('/api/health')
def health() -> dict[str, str]:
    return {'status': 'ok'}


@ui.page('/')
def index() -> None:
    ui.label('Hello')


ui.run(host='127.0.0.1', port=int(os.environ['PORT']), reload=False, show=False, show_welcome_message=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def time_start(command: list[str], env: dict[str, str], cwd: Path, port: int, timeout: float = 60) -> float:
    """Seconds from spawning `command` to `/api/health` answering 200 on `port`; the process is stopped after."""
    url = f'http://127.0.0.1:{port}/api/health'
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise SystemExit(f'{command} exited with {process.returncode}')
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            time.sleep(0.01)
        raise SystemExit(f'{command}: no 200 from {url} within {timeout:.0f} s')
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or '').split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=5, help='timed starts of each (default 5)')
    parser.add_argument(
        '--cold-bytecode', action='store_true', help='no bytecode cache: every start compiles every module from source'
    )
    args = parser.parse_args()
    uv = shutil.which('uv') or 'uv'
    workdir = Path(tempfile.mkdtemp(prefix='cxt-start-'))
    try:
        (workdir / 'bare.py').write_text(BARE_APP)
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(('CXT_', 'NICEGUI_', 'PYTEST_', 'PYTHONDONTWRITEBYTECODE', 'PYTHONPYCACHEPREFIX'))
        }
        if args.cold_bytecode:
            env['PYTHONDONTWRITEBYTECODE'] = '1'
        else:
            env['PYTHONPYCACHEPREFIX'] = str(workdir / 'bytecode')
        env.update(CXT_DATA_DIR=str(workdir / 'data'), CXT_HOST='127.0.0.1', NICEGUI_STORAGE_PATH=str(workdir / 'ns'))
        app = [uv, 'run', '--project', str(ROOT), str(ROOT / 'main.py')]
        bare = [uv, 'run', '--project', str(ROOT), str(workdir / 'bare.py')]

        def start(command: list[str]) -> float:
            port = free_port()
            return time_start(command, {**env, 'CXT_PORT': str(port), 'PORT': str(port)}, workdir, port)

        start(app)  # first start: creates and migrates the database, fills the caches
        start(bare)
        times: dict[str, list[float]] = {'app': [], 'bare': []}
        for run in range(1, args.runs + 1):
            for label, command in (('app', app), ('bare', bare)) if run % 2 else (('bare', bare), ('app', app)):
                times[label].append(start(command))
            print(f'run {run}: app {times["app"][-1]:.2f} s, bare {times["bare"][-1]:.2f} s')
        app_median, bare_median = statistics.median(times['app']), statistics.median(times['bare'])
        ok = app_median <= TARGET_SECONDS
        print(
            f'\n{"cold" if args.cold_bytecode else "warm"} bytecode cache, median of {args.runs}: '
            f'app {app_median:.2f} s, bare NiceGUI {bare_median:.2f} s, '
            f'ratio app/bare {app_median / bare_median:.2f}; '
            f'target app <= {TARGET_SECONDS} s: {"PASS" if ok else "MISS"}'
        )
        load_average = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
        if load_average > (os.cpu_count() or 1) * 0.75 + 1:
            print(f'note: load average {load_average:.1f} on {os.cpu_count()} CPUs: other work competed with this run')
        return 0 if ok else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
