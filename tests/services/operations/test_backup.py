"""Backups of a running SQLite instance, in process (operations/test_backup_command.py runs the commands)."""

import json
import sqlite3
import stat
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from models import User
from services import config, db
from services.db import write_scope
from services.keys import api_keys
from services.operations import backup
from tests.factories import acting, make_organization, make_user

# On PostgreSQL the database is pg_dump's job (tests/services/operations/test_backup_command.py runs that path).
pytestmark = pytest.mark.sqlite_only("SQLite's online backup API")

BURST_LENGTH = 2000  # rotations at most (a bound, never reached); the backup is taken once BEFORE_BACKUP are committed
BEFORE_BACKUP = 40


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


def generate(actor: User) -> str:
    with write_scope() as session:
        return api_keys.generate_key(session=session, actor=actor)


def rotate(actor: User) -> str:
    with write_scope() as session:
        return api_keys.rotate_key(session=session, actor=acting(session, actor), grace=timedelta(0))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_backup_taken_during_rotations_holds_every_rotation_committed_before_it(
    admin: User, isolated_environment: Path, tmp_path: Path
) -> None:
    committed = [generate(admin)]  # each key is appended once its transaction has committed
    stop = threading.Event()
    errors: list[BaseException] = []

    def burst() -> None:
        try:
            while not stop.is_set() and len(committed) < BURST_LENGTH:
                committed.append(rotate(admin))
        except BaseException as error:
            errors.append(error)

    rotating = threading.Thread(target=burst)
    rotating.start()
    try:
        while len(committed) < BEFORE_BACKUP and rotating.is_alive():
            time.sleep(0.001)
        before = list(committed)
        # The commits are still in the WAL (the app's connections are open), as on a running server.
        assert (isolated_environment / 'cxt.sqlite3-wal').stat().st_size > 0
        made = backup.backup(settings=config.current_settings(), target=tmp_path / 'backup')
        during = len(committed)
        while len(committed) < during + 5 and rotating.is_alive():
            time.sleep(0.001)  # the burst goes on after the backup: nothing waited for it
    finally:
        stop.set()
        rotating.join()
    assert not errors, errors

    copy = sqlite3.connect(tmp_path / 'backup' / 'cxt.sqlite3')
    try:
        assert copy.execute('PRAGMA integrity_check').fetchone() == ('ok',)
        assert copy.execute('PRAGMA journal_mode').fetchone() == ('delete',)  # one self-contained file
        hashes = [row[0] for row in copy.execute('SELECT key_hash FROM api_key ORDER BY id')]
        active = copy.execute('SELECT key_hash FROM api_key WHERE expires_at IS NULL').fetchall()
        rotations = copy.execute("SELECT count(*) FROM audit_event WHERE action = 'api_key.rotated'").fetchone()[0]
    finally:
        copy.close()
    held = len(hashes)
    # A snapshot: the first `held` keys in commit order, nothing from later, no gap, and at least everything
    # committed before the backup began.
    assert hashes == [api_keys.hash_key(key) for key in committed[:held]]
    assert len(before) <= held <= during, (len(before), held, during)
    assert active == [(api_keys.hash_key(committed[held - 1]),)]
    assert rotations == held - 1  # the audit rows of the same transactions, no more, no fewer
    assert len(committed) > held  # rotations went on after the copy: the backup was of a live database

    assert made.manifest.engine == 'sqlite' and made.manifest.secret == 'file'
    assert set(made.files) == {'cxt.sqlite3', 'secret_key', 'manifest.json'}
    assert (tmp_path / 'backup' / 'secret_key').read_bytes() == (isolated_environment / 'secret_key').read_bytes()
    manifest = json.loads((tmp_path / 'backup' / 'manifest.json').read_text())
    assert manifest['schema_revision'] == made.manifest.schema_revision and manifest['schema_revision']
    assert manifest['app_version'] == backup.app_version() and manifest['created_at'].endswith('+00:00')
    assert mode(tmp_path / 'backup') == 0o700
    assert {path.name: mode(path) for path in (tmp_path / 'backup').iterdir()} == dict.fromkeys(made.files, 0o600)


def test_restore_into_an_empty_data_dir_brings_back_the_database_and_its_secret(
    admin: User, isolated_environment: Path, tmp_path: Path
) -> None:
    keys = [generate(admin), rotate(admin), rotate(admin)]
    backup.backup(settings=config.current_settings(), target=tmp_path / 'backup')
    restored_dir = tmp_path / 'restored'
    settings = config.Settings(data_dir=restored_dir)
    done = backup.restore(settings=settings, source=tmp_path / 'backup')

    assert sorted(path.name for path in done.files) == ['cxt.sqlite3', 'secret_key']
    assert mode(restored_dir) == 0o700
    assert {path.name: mode(path) for path in restored_dir.iterdir()} == {'cxt.sqlite3': 0o600, 'secret_key': 0o600}
    # The restored secret decrypts the restored key: reveal gives back the last rotation's plaintext.
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    try:
        with write_scope() as session:
            revealed = api_keys.reveal_key(session=session, actor=acting(session, admin))
        assert revealed == keys[-1]
    finally:
        engine.dispose()


def test_backup_never_overwrites(admin: User, tmp_path: Path) -> None:
    settings = config.current_settings()
    occupied = tmp_path / 'occupied'
    occupied.mkdir()
    (occupied / 'notes.txt').write_text('mine')
    with pytest.raises(backup.BackupRefused, match='is not empty'):
        backup.backup(settings=settings, target=occupied)
    assert [path.name for path in occupied.iterdir()] == ['notes.txt']
    a_file = tmp_path / 'a-file'
    a_file.write_text('mine')
    with pytest.raises(backup.BackupRefused, match='is not a directory'):
        backup.backup(settings=settings, target=a_file)
    assert a_file.read_text() == 'mine'
    empty = tmp_path / 'empty'
    empty.mkdir(mode=0o755)
    backup.backup(settings=settings, target=empty)  # an empty directory is fine, and made private
    assert mode(empty) == 0o700


def test_restore_refuses_a_data_dir_that_is_not_empty(admin: User, isolated_environment: Path, tmp_path: Path) -> None:
    backup.backup(settings=config.current_settings(), target=tmp_path / 'backup')
    before = sorted(path.name for path in isolated_environment.iterdir())
    with pytest.raises(backup.BackupRefused, match=r'The data directory .* is not empty \(cxt.sqlite3, .*\)'):
        backup.restore(settings=config.current_settings(), source=tmp_path / 'backup')
    assert sorted(path.name for path in isolated_environment.iterdir()) == before

    only_a_secret = tmp_path / 'secret-only'  # e.g. a PostgreSQL instance's data dir: its secret is not replaced
    only_a_secret.mkdir()
    (only_a_secret / 'secret_key').write_text('s' * 40)
    with pytest.raises(backup.BackupRefused, match=r'is not empty \(secret_key\)'):
        backup.restore(settings=config.Settings(data_dir=only_a_secret), source=tmp_path / 'backup')
    assert (only_a_secret / 'secret_key').read_text() == 's' * 40


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    settings = config.Settings(data_dir=tmp_path / 'restored')
    (tmp_path / 'not-a-backup').mkdir()
    with pytest.raises(backup.BackupRefused, match=r'is not a backup: it has no manifest\.json'):
        backup.restore(settings=settings, source=tmp_path / 'not-a-backup')
    assert not (tmp_path / 'restored').exists()


def test_restore_refuses_a_backup_from_a_newer_schema(admin: User, tmp_path: Path) -> None:
    backup.backup(settings=config.current_settings(), target=tmp_path / 'backup')
    copy = sqlite3.connect(tmp_path / 'backup' / 'cxt.sqlite3')
    with copy:
        copy.execute("UPDATE alembic_version SET version_num = '9999'")
    copy.close()
    manifest = tmp_path / 'backup' / 'manifest.json'
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), 'schema_revision': '9999'}))
    restored_dir = tmp_path / 'restored'
    with pytest.raises(backup.BackupRefused, match='schema 9999, which this version of the app does not know'):
        backup.restore(settings=config.Settings(data_dir=restored_dir), source=tmp_path / 'backup')
    assert not restored_dir.exists()


def test_restore_refuses_a_backup_of_another_engine(admin: User, tmp_path: Path) -> None:
    backup.backup(settings=config.current_settings(), target=tmp_path / 'backup')
    on_postgres = config.Settings(data_dir=tmp_path / 'restored', database_url='postgresql+psycopg://cxt@db/cxt')
    with pytest.raises(backup.BackupRefused, match='of a SQLite instance but this one uses PostgreSQL'):
        backup.restore(settings=on_postgres, source=tmp_path / 'backup')
    assert not (tmp_path / 'restored').exists()
