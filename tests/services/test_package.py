"""The installable package: `uv build` makes a wheel that runs the whole app from a fresh virtual environment outside
the checkout, as `cx-toolbox`, the same command line as `uv run main.py`; and a start says only what it should."""

import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.version import app_version
from tests.browser.app_process import START_TIMEOUT, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
UV = os.environ.get('UV', 'uv')


def run(command: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, **options)  # type: ignore[call-overload]


def uv(*arguments: str, cwd: Path) -> None:
    """`uv ...` from the cache when it holds everything (no network needed), else from the package index."""
    done = run([UV, *arguments, '--offline'], cwd=cwd)
    if done.returncode != 0:
        done = run([UV, *arguments], cwd=cwd)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope='module')
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The wheel built from this checkout, installed into a new virtual environment in a temp dir: its bin dir."""
    root = tmp_path_factory.mktemp('package')
    uv('build', '--wheel', '--out-dir', str(root / 'dist'), cwd=REPO_ROOT)
    (wheel,) = (root / 'dist').glob('cx_toolbox_dashboard-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ('main.py', 'migrations/env.py', 'migrations/script.py.mako', 'ui/sections/passkeys.js'):
        assert needed in names, f'{needed} is not in the wheel'
    assert any(name.startswith('migrations/versions/0001_') for name in names)
    assert 'ui/pages/help.py' in names  # the in-app help pages
    assert not any(name.startswith('tests/') for name in names)
    uv('venv', str(root / 'venv'), '--python', sys.executable, cwd=root)
    python = str(root / 'venv' / 'bin' / 'python')
    uv('pip', 'install', '--compile-bytecode', '--python', python, str(wheel), cwd=root)  # like pip: quick starts
    yield root / 'venv' / 'bin'


def outside_environment(**extra: str) -> dict[str, str]:
    """The environment without this checkout's virtual environment, pytest's markers or any CXT_ setting."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(('CXT_', 'VIRTUAL_ENV', 'PYTEST', 'NICEGUI_', 'PYTHONPATH'))
    }
    env.update(extra, PYTHONUNBUFFERED='1')
    return env


def test_cx_toolbox_has_the_same_command_line(installed: Path, tmp_path: Path) -> None:
    command = str(installed / 'cx-toolbox')
    version = run([command, '--version'], cwd=tmp_path, env=outside_environment(CXT_DATA_DIR=str(tmp_path / 'd')))
    assert version.returncode == 0 and version.stdout.strip() == f'CX Toolbox Dashboard {app_version()}'
    shown = run([command, '--help'], cwd=tmp_path, env=outside_environment(CXT_DATA_DIR=str(tmp_path / 'd')))
    assert shown.returncode == 0 and shown.stdout.startswith('usage: cx-toolbox')
    for operator_command in ('unlock', 'reset-password', 'reset-2fa', 'create-admin', 'backup', 'restore'):
        assert operator_command in shown.stdout
    unlocked = run(
        [command, 'unlock', 'nobody@example.com'],
        cwd=tmp_path,
        env=outside_environment(CXT_DATA_DIR=str(tmp_path / 'd')),
    )
    # The operator commands run from the wheel too (with its migrations: the data dir was empty).
    assert unlocked.returncode == 0 and 'nobody@example.com can sign in again' in unlocked.stdout


def serve(command: Path, workdir: Path, data_dir: Path) -> tuple[str, str]:
    """Start `command` with no arguments on a free port, reach /setup, stop it; its output and the setup page."""
    port = free_port()
    log = workdir / f'serve-{port}.log'
    with log.open('wb') as output:
        process = subprocess.Popen(
            [str(command)],
            cwd=workdir,
            env=outside_environment(CXT_DATA_DIR=str(data_dir), CXT_PORT=str(port)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        page = _setup_page(f'http://127.0.0.1:{port}', process, log)
    finally:
        process.terminate()
        process.wait(timeout=15)
    return log.read_text(), page


def _setup_page(url: str, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f'it exited with {process.returncode}:\n{log.read_text()}'
        try:
            response = httpx.get(f'{url}/setup', timeout=2)
            if response.status_code == 200:
                return response.text
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f'no /setup within {START_TIMEOUT} s:\n{log.read_text()}')


def test_the_installed_wheel_serves_the_setup_page_and_starts_quietly(installed: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / 'data'
    first, page = serve(installed / 'cx-toolbox', tmp_path, data_dir)
    assert 'Create organization' in page and 'Organization name' in page
    assert 'tailwindcss v' in page and 'tailwindcss.min.js' not in page  # its compiled CSS is in the wheel
    lines = first.strip().splitlines()
    assert lines[0] == f'CX Toolbox Dashboard {app_version()}'
    assert re.fullmatch(r'.* INFO services\.db: Database schema migrated from an empty database to \d{4}', lines[1])
    assert re.fullmatch(r'Ready on http://127\.0\.0\.1:\d+', lines[2])
    assert len(lines) == 3, first  # nothing else: no Alembic lines, no server banner
    assert (data_dir / 'cxt.sqlite3').exists() and not (tmp_path / 'migrations').exists()

    again, _ = serve(installed / 'cx-toolbox', tmp_path, data_dir)  # nothing to migrate: not a word about it
    version, ready = again.strip().splitlines()
    assert version == lines[0] and re.fullmatch(r'Ready on http://127\.0\.0\.1:\d+', ready)


def test_setup_code_is_printed_when_the_address_is_reachable(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    env = outside_environment(CXT_DATA_DIR=str(tmp_path / 'data'), CXT_PORT=str(port), CXT_HOST='0.0.0.0')
    env['CXT_LOG_LEVEL'] = 'warning'  # the code is shown even at warning: without it nobody can set the instance up
    with (tmp_path / 'out.log').open('wb') as output:
        process = subprocess.Popen([str(installed / 'cx-toolbox')], cwd=tmp_path, env=env, stdout=output, stderr=output)
    try:
        _setup_page(f'http://127.0.0.1:{port}', process, tmp_path / 'out.log')
    finally:
        process.terminate()
        process.wait(timeout=15)
    printed = (tmp_path / 'out.log').read_text().strip().splitlines()
    assert len(printed) == 1 and re.fullmatch(r'Setup code\b.*: [0-9a-f]{32}', printed[0]), printed
