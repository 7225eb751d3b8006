"""`uv run main.py backup PATH` and `restore PATH`, run as the real program; the restored instance served for real."""

import json
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from models import User
from services import config, db
from services.db import read_connection, write_scope
from services.keys import api_keys
from tests.browser.app_process import AppProcess
from tests.factories import acting, make_organization, make_user
from tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[3]
PG_PASSWORD = 'never-printed-7f3a'  # the throwaway server trusts every login, so any password connects


def run_main(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python main.py ARGUMENTS` with this test's environment (its CXT_DATA_DIR), plus `env`."""
    environment = {name: value for name, value in os.environ.items() if name != 'PYTEST_CURRENT_TEST'} | env
    return subprocess.run(
        [sys.executable, str(REPO / 'main.py'), *arguments], env=environment, capture_output=True, text=True, timeout=60
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make_admin() -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


def generate_and_rotate(admin: User, rotations: int) -> list[str]:
    """The key's plaintexts in order: the generated one, then each rotation's (each rotated away immediately)."""
    with write_scope() as session:
        keys = [api_keys.generate_key(session=session, actor=admin)]
    for _ in range(rotations):
        with write_scope() as session:
            keys.append(api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(0)))
    return keys


def organization_status(app: AppProcess, key: str) -> int:
    headers = {'Authorization': f'Bearer {key}'}
    return httpx.get(f'{app.url}/api/v1/organization', headers=headers, timeout=10).status_code


def test_help_lists_backup_and_restore() -> None:
    shown = run_main('--help')
    assert shown.returncode == 0 and 'backup' in shown.stdout and 'restore' in shown.stdout


@pytest.mark.sqlite_only(
    "SQLite's online backup (PostgreSQL: test_on_postgres_the_backup_is_the_secret_and_the_pg_dump_command)"
)
def test_restored_instance_serves_the_current_key_and_refuses_the_rotated_ones(
    database: None, isolated_environment: Path, tmp_path: Path
) -> None:
    keys = generate_and_rotate(make_admin(), rotations=5)
    # This process keeps the database open, as a running server does: the rotations are still in the WAL.
    assert (isolated_environment / 'cxt.sqlite3-wal').stat().st_size > 0

    made = run_main('backup', str(tmp_path / 'backup'))
    assert made.returncode == 0, made.stderr
    assert 'Backed up to' in made.stdout and 'integrity ok' in made.stdout
    assert sorted(path.name for path in (tmp_path / 'backup').iterdir()) == [
        'cxt.sqlite3',
        'manifest.json',
        'secret_key',
    ]
    assert mode(tmp_path / 'backup') == 0o700
    assert all(mode(path) == 0o600 for path in (tmp_path / 'backup').iterdir())
    manifest = json.loads((tmp_path / 'backup' / 'manifest.json').read_text())
    assert set(manifest) >= {'created_at', 'schema_revision', 'app_version'} and manifest['schema_revision']

    restored_dir = tmp_path / 'restored'
    done = run_main('restore', str(tmp_path / 'backup'), CXT_DATA_DIR=str(restored_dir))
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in restored_dir.iterdir()) == ['cxt.sqlite3', 'secret_key']
    assert mode(restored_dir) == 0o700
    assert all(mode(path) == 0o600 for path in restored_dir.iterdir())

    app_dir = tmp_path / 'app'
    app_dir.mkdir()
    app = AppProcess(REPO, app_dir, env={'CXT_DATA_DIR': str(restored_dir)}).start()
    try:
        assert organization_status(app, keys[-1]) == 200
        assert [organization_status(app, key) for key in keys[:-1]] == [401] * 5
    finally:
        app.stop()


@pytest.mark.sqlite_only('the data directory holds the SQLite files the restore would overwrite')
def test_the_commands_refuse_to_overwrite(database: None, isolated_environment: Path, tmp_path: Path) -> None:
    occupied = tmp_path / 'occupied'
    occupied.mkdir()
    (occupied / 'notes.txt').write_text('mine')
    refused = run_main('backup', str(occupied))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f'Not done: {occupied} is not empty and a backup never overwrites: choose a new or empty one.'
    ]
    assert [path.name for path in occupied.iterdir()] == ['notes.txt']

    assert run_main('backup', str(tmp_path / 'backup')).returncode == 0
    held = {path.name: path.read_bytes() for path in isolated_environment.iterdir() if path.is_file()}
    refused = run_main('restore', str(tmp_path / 'backup'))  # into this test's own data dir, which is in use
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f'Not done: The data directory {isolated_environment} is not empty (cxt.sqlite3')
    assert {path.name: path.read_bytes() for path in isolated_environment.iterdir() if path.is_file()} == held


def with_password(url: str) -> str:
    return url.replace('postgres@', f'postgres:{PG_PASSWORD}@', 1)


def run_printed(output: str, program: str, postgres: PostgresServer) -> None:
    """Run the command line the app printed for `program`, exactly as printed, with the server's own binaries."""
    (line,) = [line.strip() for line in output.splitlines() if line.strip().startswith(f'{program} ')]
    env = os.environ | {'PATH': f'{postgres.bin_dir}:{os.environ["PATH"]}', 'PGCONNECT_TIMEOUT': '10'}
    ran = subprocess.run(
        line, shell=True, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert ran.returncode == 0, (line, ran.stderr)


def test_on_postgres_the_backup_is_the_secret_and_the_pg_dump_command(
    postgres: PostgresServer, isolated_environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = with_password(postgres.create_database())
    monkeypatch.setenv('CXT_DATABASE_URL', url)
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    try:
        keys = generate_and_rotate(make_admin(), rotations=2)
    finally:
        engine.dispose()

    made = run_main('backup', str(tmp_path / 'backup'))
    assert made.returncode == 0, made.stderr
    assert PG_PASSWORD not in made.stdout + made.stderr
    dump = tmp_path / 'backup' / 'cxt.dump'
    database = url.rsplit('/', 1)[1]
    expected = (
        f'pg_dump --format=custom --file={dump} --dbname=postgresql://postgres@127.0.0.1:{postgres.port}/{database}'
    )
    assert f'  {expected}\n' in made.stdout
    # Only the secret (and the manifest) is copied; the database is pg_dump's.
    assert sorted(path.name for path in (tmp_path / 'backup').iterdir()) == ['manifest.json', 'secret_key']
    assert (tmp_path / 'backup' / 'secret_key').read_bytes() == (isolated_environment / 'secret_key').read_bytes()
    assert json.loads((tmp_path / 'backup' / 'manifest.json').read_text())['engine'] == 'postgresql'

    # The printed command is the exact one: run as printed, it writes the dump beside the secret.
    run_printed(made.stdout, 'pg_dump', postgres)
    assert dump.stat().st_size > 0

    # Restore: the secret into an empty data dir, and the printed pg_restore into an empty database.
    restored_dir, restored_url = tmp_path / 'restored', postgres.create_database()
    done = run_main('restore', str(tmp_path / 'backup'), CXT_DATA_DIR=str(restored_dir), CXT_DATABASE_URL=restored_url)
    assert done.returncode == 0, done.stderr
    assert [path.name for path in restored_dir.iterdir()] == ['secret_key']
    assert mode(restored_dir / 'secret_key') == 0o600
    run_printed(done.stdout, 'pg_restore', postgres)

    monkeypatch.setenv('CXT_DATA_DIR', str(restored_dir))
    monkeypatch.setenv('CXT_DATABASE_URL', restored_url)
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    try:
        with read_connection() as connection:
            verified = [api_keys.verify_key(connection=connection, key=key) is not None for key in keys]
        assert verified == [False, False, True]
        with write_scope() as session:
            admin = session.exec(select(User)).one()
            revealed = api_keys.reveal_key(session=session, actor=acting(session, admin))
        assert revealed == keys[-1]  # the restored secret decrypts the restored key
    finally:
        engine.dispose()
