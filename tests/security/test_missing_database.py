"""A data directory that holds a secret but no database is an instance whose database was deleted or moved: starting
on it used to create an empty database silently, and `/setup` was then open to the first comer (on loopback without
a setup code). Now the process refuses with one line naming the file and the restore command; `--new-instance`
starts a new, empty instance there on purpose."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT


def instance_without_database(tmp_path: Path) -> AppProcess:
    app = AppProcess(REPO_ROOT, tmp_path)
    app.data_dir.mkdir(mode=0o700)
    (app.data_dir / 'secret_key').write_text('s' * 64 + '\n')
    return app


def run_main(app: AppProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / 'main.py'), *arguments],
        cwd=app.workdir,
        env=app.environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_start_up_refuses_a_data_directory_with_a_secret_but_no_database(tmp_path: Path) -> None:
    app = instance_without_database(tmp_path)
    refused = run_main(app)
    assert refused.returncode != 0
    said = refused.stderr.strip()
    database = (app.data_dir / 'cxt.sqlite3').resolve()
    assert len(said.splitlines()) == 1, said
    assert str(database) in said and 'main.py restore' in said and '--new-instance' in said
    assert not database.exists(), 'no empty database may be created'


def test_operator_commands_refuse_it_too(tmp_path: Path) -> None:
    app = instance_without_database(tmp_path)
    refused = run_main(app, 'create-admin', 'someone@example.com')
    assert refused.returncode != 0 and 'main.py restore' in refused.stderr
    assert not (app.data_dir / 'cxt.sqlite3').exists()


def test_new_instance_starts_an_empty_one_there_on_purpose(tmp_path: Path) -> None:
    app = instance_without_database(tmp_path)
    log = app.log_path.open('wb')
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / 'main.py'), '--new-instance'],
        cwd=app.workdir,
        env=app.environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, app.log()
            try:
                if httpx.get(f'{app.url}/api/ready', timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f'never ready:\n{app.log()}')
        assert (app.data_dir / 'cxt.sqlite3').exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert run_main(app, '--help').returncode == 0
    # From now on it is an instance with its database: it starts without the flag.
    assert os.path.getsize(app.data_dir / 'cxt.sqlite3') > 0
