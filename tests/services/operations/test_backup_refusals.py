"""Restores that must be refused, leaving nothing behind: an empty or missing secret in the backup, a PostgreSQL
target that already holds tables (pg_restore used to merge a backup's rows into them), and a refused restore that
used to leave an empty data directory behind."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services import config
from services.db import write_scope
from services.operations import backup
from tests.factories import make_organization, make_user
from tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def sqlite_backup(database: None, tmp_path: Path) -> Path:
    with write_scope() as session:
        make_user(session, organization=make_organization(session))
    config.resolve_secret_key(config.current_settings())
    made = backup.backup(settings=config.current_settings(), target=tmp_path / 'backup')
    assert made.manifest.secret == 'file'
    return made.target


@pytest.mark.sqlite_only('a backup of an SQLite instance')
def test_an_empty_secret_in_the_backup_is_refused(sqlite_backup: Path, tmp_path: Path) -> None:
    (sqlite_backup / 'secret_key').write_text('\n')
    restored = tmp_path / 'restored'
    with pytest.raises(backup.BackupRefused, match=r'secret_key in the backup is empty'):
        backup.restore(settings=config.Settings(data_dir=restored), source=sqlite_backup)
    assert not restored.exists()


@pytest.mark.sqlite_only('a backup of an SQLite instance')
def test_a_missing_secret_in_the_backup_is_said_plainly(sqlite_backup: Path, tmp_path: Path) -> None:
    (sqlite_backup / 'secret_key').unlink()
    restored = tmp_path / 'restored'
    with pytest.raises(backup.BackupRefused) as refused:
        backup.restore(settings=config.Settings(data_dir=restored), source=sqlite_backup)
    said = str(refused.value)
    assert 'secret_key' in said and 'manifest' in said and 'No such file' not in said, said
    assert not restored.exists()


def test_a_refused_restore_from_the_command_line_leaves_no_data_directory_behind(tmp_path: Path) -> None:
    (tmp_path / 'not-a-backup').mkdir()
    data_dir = tmp_path / 'new-data-dir'
    env = {name: value for name, value in os.environ.items() if name != 'PYTEST_CURRENT_TEST'}
    env['CXT_DATA_DIR'] = str(data_dir)
    ran = subprocess.run(
        [sys.executable, str(REPO / 'main.py'), 'restore', str(tmp_path / 'not-a-backup')],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 1 and 'is not a backup' in ran.stderr
    assert not data_dir.exists(), 'the refused restore created the data directory and left it empty'


def postgresql_backup(tmp_path: Path) -> Path:
    """A PostgreSQL backup as `backup` writes it: the secret, the manifest and (after pg_dump) a dump file."""
    source = tmp_path / 'pg-backup'
    source.mkdir()
    (source / 'secret_key').write_text('s' * 64 + '\n')
    manifest = {
        'created_at': '2026-12-04T00:00:00+00:00',
        'engine': 'postgresql',
        'schema_revision': None,
        'app_version': backup.app_version(),
        'secret': 'file',
    }
    (source / 'manifest.json').write_text(json.dumps(manifest))
    (source / 'cxt.dump').write_bytes(b'PGDMP')
    return source


def test_restore_into_a_non_empty_postgresql_database_is_refused(pg_database: str, tmp_path: Path) -> None:
    """pg_database is migrated: it has the app's tables, as a database that served does."""
    source = postgresql_backup(tmp_path)
    restored = tmp_path / 'restored'
    settings = config.Settings(data_dir=restored, database_url=pg_database)
    with pytest.raises(backup.BackupRefused, match=r'is not empty \(.*alembic_version.*\)'):
        backup.restore(settings=settings, source=source)
    assert not restored.exists()


def test_restore_into_an_empty_postgresql_database_prints_a_single_transaction_pg_restore(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    source = postgresql_backup(tmp_path)
    settings = config.Settings(data_dir=tmp_path / 'restored', database_url=postgres.create_database())
    done = backup.restore(settings=settings, source=source)
    assert done.pg_restore_command is not None
    assert done.pg_restore_command.startswith('pg_restore --single-transaction --exit-on-error ')


def test_restore_refuses_an_unreachable_postgresql_database(postgres: PostgresServer, tmp_path: Path) -> None:
    source = postgresql_backup(tmp_path)
    gone = postgres.create_database().rsplit('/', 1)[0] + '/no_such_database'
    with pytest.raises(backup.BackupRefused, match='Could not check that the PostgreSQL database is empty'):
        backup.restore(settings=config.Settings(data_dir=tmp_path / 'restored', database_url=gone), source=source)
    assert not (tmp_path / 'restored').exists()
