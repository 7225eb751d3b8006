"""The dashboard as a real process: `python main.py` on a free port with its own data dir."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_TIMEOUT = 60.0  # generous: CI machines are small and shared


class AppProcess:
    def __init__(self, repo_root: Path, workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.repo_root = repo_root
        self.workdir = workdir
        self.data_dir = workdir / 'data'
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.extra_env = env or {}
        self.log_path = workdir / 'app.log'
        self._process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith('CXT_') and name not in {'PYTEST_CURRENT_TEST', 'NICEGUI_STORAGE_PATH'}
        }
        # Under PYTEST_CURRENT_TEST NiceGUI believes it is being tested and ui.run behaves differently.
        env.update(CXT_HOST='127.0.0.1', CXT_PORT=str(self.port), CXT_DATA_DIR=str(self.data_dir), PYTHONUNBUFFERED='1')
        env.update(self.extra_env)
        return env

    def start(self) -> 'AppProcess':
        return self.spawn().wait_ready()

    def spawn(self) -> 'AppProcess':
        """Launch the process without waiting for it (it boots while the caller does something else)."""
        log = self.log_path.open('wb')
        self._process = subprocess.Popen(
            [sys.executable, str(self.repo_root / 'main.py')],
            cwd=self.workdir,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait_ready(self) -> 'AppProcess':
        """Block until `/api/health` answers 200."""
        assert self._process is not None, 'spawn() first'
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f'the app exited with {self._process.returncode}:\n{self.log()}')
            try:
                if httpx.get(f'{self.url}/api/health', timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f'the app did not answer /api/health within {START_TIMEOUT} s:\n{self.log()}')

    @property
    def pid(self) -> int:
        assert self._process is not None, 'spawn() first'
        return self._process.pid

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')[-5000:] if self.log_path.exists() else ''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
