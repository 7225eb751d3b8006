"""Back up a running instance into a directory, and restore one into an empty data dir (`uv run main.py backup`).

On SQLite the copy is made with SQLite's online backup API: one read transaction over the live database, so it
holds everything committed before it began, including what still sits in the WAL (copying the `.sqlite3` file
alone loses those commits), while the app keeps writing. The secret file goes beside it: without it the stored
API keys cannot be decrypted. On PostgreSQL the database is `pg_dump`'s job; only the secret is copied here.
"""

import json
import os
import shlex
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, create_engine, inspect, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from services import version
from services.config import SECRET_FILE_NAME, Settings, data_dir_made_here
from services.db import MIGRATIONS_DIR
from services.errors import ServiceError

DATABASE_FILE_NAME = 'cxt.sqlite3'
MANIFEST_FILE_NAME = 'manifest.json'
DUMP_FILE_NAME = 'cxt.dump'  # where the printed pg_dump command writes, beside the secret

Engine = Literal['sqlite', 'postgresql']
ENGINE_NAMES: dict[str, str] = {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL'}
# Where the backed-up instance kept its secret: a file (copied into the backup), CXT_SECRET_KEY (not copied), or
# nowhere yet (the app never served, or the file was deleted: stored keys then cannot be decrypted anyway).
SecretSource = Literal['file', 'environment', 'missing']


class BackupRefused(ServiceError):
    """A backup or restore that was not done; the message says why in one line."""


@dataclass(frozen=True)
class Manifest:
    created_at: str  # ISO 8601, UTC: when the copy began
    engine: Engine
    schema_revision: str | None  # alembic_version of the copy; None for PostgreSQL (it is in the dump)
    app_version: str
    secret: SecretSource


@dataclass(frozen=True)
class BackupResult:
    target: Path
    manifest: Manifest
    files: tuple[str, ...]  # written into `target`
    database_bytes: int  # size of the SQLite copy; 0 on PostgreSQL
    pg_dump_command: str | None  # on PostgreSQL: what to run to dump the database beside the secret

    def report(self) -> list[str]:
        """What the operator is told: what was written, and what is left for them to do."""
        lines = [f'Backed up to {self.target}: {", ".join(self.files)} (files 0600, directory 0700).']
        if self.manifest.engine == 'sqlite':
            lines.append(
                f'Database: {self.database_bytes:,} bytes, schema {self.manifest.schema_revision}, integrity ok.'
            )
        if self.manifest.secret == 'environment':
            lines.append('The secret is CXT_SECRET_KEY, not a file: keep its value with this backup (it is not in it).')
        elif self.manifest.secret == 'missing':
            lines.append('There was no secret file to copy: stored API keys cannot be revealed after a restore.')
        if self.pg_dump_command:
            lines.append('The database is on PostgreSQL: dump it into the backup with this command (it asks for the')
            lines.append(f'password unless PGPASSWORD or ~/.pgpass holds it):\n  {self.pg_dump_command}')
        if self.manifest.secret == 'file':
            lines.append('Keep the backup private: its secret decrypts the stored API keys.')
        return lines


@dataclass(frozen=True)
class RestoreResult:
    data_dir: Path
    manifest: Manifest
    files: tuple[Path, ...]  # written
    pg_restore_command: str | None  # on PostgreSQL: what to run to load the dump, when the backup holds one
    secret_overridden: bool  # CXT_SECRET_KEY is set, so the app uses it, not the restored file

    def report(self) -> list[str]:
        """What the operator is told: what was restored, and what is left for them to do."""
        lines = [f'Restored into {self.data_dir}: {", ".join(path.name for path in self.files)} (0600).']
        if self.manifest.secret == 'missing':
            lines.append('The backup had no secret: the app makes a new one, so rotate the API key to reveal it again.')
        if self.secret_overridden:
            lines.append(
                'CXT_SECRET_KEY is set and wins over the restored secret file: it must be the backed-up value.'
            )
        if self.pg_restore_command:
            lines.append(f'Load the dump into an empty PostgreSQL database:\n  {self.pg_restore_command}')
        elif self.manifest.engine == 'postgresql':
            lines.append('This backup holds no database dump: load the pg_dump taken with it by pg_restore.')
        return lines


def backup(*, settings: Settings, target: Path) -> BackupResult:
    """Copy the configured instance into `target` (a new or empty directory): the SQLite database as one consistent
    file, the secret file and a manifest; on PostgreSQL the secret and the pg_dump command to run."""
    engine = _engine_of(settings)
    source = _sqlite_path(settings) if engine == 'sqlite' else None
    if source is not None and not source.is_file():
        raise BackupRefused(f'There is no database at {source} to back up.')
    secret_file = settings.data_dir / SECRET_FILE_NAME
    secret = _secret_source(settings)
    created_dir = _prepare_target(target)
    written: list[Path] = []
    try:
        manifest, size = _write_backup(
            target, engine=engine, source=source, secret=secret, secret_file=secret_file, written=written
        )
    except BaseException as error:
        _remove(written, created_dir=target if created_dir else None)
        if isinstance(error, OSError | sqlite3.Error):
            raise BackupRefused(f'Could not back up to {target}: {_reason(error)}.') from error
        raise
    return BackupResult(
        target=target,
        manifest=manifest,
        files=tuple(path.name for path in written),
        database_bytes=size,
        pg_dump_command=_pg_dump_command(settings, target) if engine == 'postgresql' else None,
    )


def _pg_dump_command(settings: Settings, target: Path) -> str:
    dump = shlex.quote(str(target.resolve() / DUMP_FILE_NAME))
    return f'pg_dump --format=custom --file={dump} --dbname={shlex.quote(_libpq_url(settings))}'


def _secret_source(settings: Settings) -> SecretSource:
    if settings.secret_key:
        return 'environment'
    return 'file' if (settings.data_dir / SECRET_FILE_NAME).is_file() else 'missing'


def _write_backup(
    target: Path, *, engine: Engine, source: Path | None, secret: SecretSource, secret_file: Path, written: list[Path]
) -> tuple[Manifest, int]:
    """Write the database copy, the secret and the manifest into `target`, each added to `written` once it is;
    returns the manifest and the database copy's size."""
    created_at = datetime.now(UTC).isoformat(timespec='seconds')
    revision, size = None, 0
    if source is not None:
        revision, size = _copy_live_database(source, target / DATABASE_FILE_NAME)
        written.append(target / DATABASE_FILE_NAME)
    if secret == 'file':
        _write_private(target / SECRET_FILE_NAME, secret_file.read_bytes())
        written.append(target / SECRET_FILE_NAME)
    manifest = Manifest(
        created_at=created_at, engine=engine, schema_revision=revision, app_version=app_version(), secret=secret
    )
    _write_private(target / MANIFEST_FILE_NAME, (json.dumps(asdict(manifest), indent=2) + '\n').encode())
    written.append(target / MANIFEST_FILE_NAME)
    return manifest, size


def restore(*, settings: Settings, source: Path) -> RestoreResult:
    """Copy a backup made by `backup` into the configured data dir, which must be empty; files get mode 0600. On
    PostgreSQL the configured database must be empty too (pg_restore into one with tables merges rows)."""
    try:
        return _restore(settings=settings, source=source)
    except BackupRefused:
        _remove_empty_data_dir_made_here(settings.data_dir)
        raise


def _remove_empty_data_dir_made_here(data_dir: Path) -> None:
    """A refused restore leaves no data directory behind that only reading the settings created."""
    if data_dir_made_here(data_dir) and data_dir.is_dir() and not any(data_dir.iterdir()):
        try:
            data_dir.rmdir()
        except OSError:
            pass


def _restore(*, settings: Settings, source: Path) -> RestoreResult:
    manifest = read_manifest(source)
    data_dir = settings.data_dir
    _check_data_dir_empty(data_dir)
    engine = _engine_of(settings)
    _check_backup_fits(manifest, source=source, engine=engine, settings=settings)
    if engine == 'postgresql':
        _check_postgresql_empty(settings)
    database = _sqlite_path(settings) if engine == 'sqlite' else None
    if database is not None:
        _check_backup_database(source / DATABASE_FILE_NAME, manifest)
        if database.exists():
            raise BackupRefused(f'A database already exists at {database}; restore only where there is none.')
    copies = [(source / SECRET_FILE_NAME, data_dir / SECRET_FILE_NAME)] if manifest.secret == 'file' else []
    if database is not None:
        copies.append((source / DATABASE_FILE_NAME, database))
    written = _copy_into(data_dir, copies)
    dump = source / DUMP_FILE_NAME
    return RestoreResult(
        data_dir=data_dir,
        manifest=manifest,
        files=tuple(written),
        pg_restore_command=_pg_restore_command(settings, dump) if engine == 'postgresql' and dump.is_file() else None,
        secret_overridden=manifest.secret == 'file' and bool(settings.secret_key),
    )


def _check_data_dir_empty(data_dir: Path) -> None:
    if data_dir.exists() and (held := sorted(path.name for path in data_dir.iterdir())):
        shown = ', '.join(held[:5]) + (', …' if len(held) > 5 else '')
        raise BackupRefused(f'The data directory {data_dir} is not empty ({shown}); restore only into an empty one.')


def _check_backup_fits(manifest: Manifest, *, source: Path, engine: Engine, settings: Settings) -> None:
    """The backup is of this kind of instance, and its secret is there (in the backup or in CXT_SECRET_KEY)."""
    if manifest.engine != engine:
        hint = 'unset CXT_DATABASE_URL' if manifest.engine == 'sqlite' else 'set CXT_DATABASE_URL to its database'
        theirs, ours = ENGINE_NAMES[manifest.engine], ENGINE_NAMES[engine]
        raise BackupRefused(f'This backup is of a {theirs} instance but this one uses {ours}: {hint}.')
    if manifest.secret == 'environment' and not settings.secret_key:
        raise BackupRefused('This backup holds no secret (its instance used CXT_SECRET_KEY): set it to that value.')
    if manifest.secret == 'file':
        _check_backup_secret(source / SECRET_FILE_NAME)


def _copy_into(data_dir: Path, copies: list[tuple[Path, Path]]) -> list[Path]:
    """Copy each (file, destination) as a private file into a private `data_dir`; all or nothing."""
    written: list[Path] = []
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        for copied, destination in copies:
            _write_private(destination, copied.read_bytes())
            written.append(destination)
    except BaseException as error:
        _remove(written, created_dir=None)
        if isinstance(error, OSError):
            raise BackupRefused(f'Could not restore into {data_dir}: {_reason(error)}.') from error
        raise
    return written


def _pg_restore_command(settings: Settings, dump: Path) -> str:
    # One transaction, stopping at the first error: a failed load leaves the database as empty as it was.
    return (
        'pg_restore --single-transaction --exit-on-error --no-owner '
        f'--dbname={shlex.quote(_libpq_url(settings))} {shlex.quote(str(dump.resolve()))}'
    )


def read_manifest(source: Path) -> Manifest:
    """The manifest of the backup in `source`; refused when it is missing or not one `backup` wrote."""
    path = source / MANIFEST_FILE_NAME
    try:
        fields = json.loads(path.read_text())
        manifest = Manifest(**fields)
    except FileNotFoundError:
        raise BackupRefused(f'{source} is not a backup: it has no {MANIFEST_FILE_NAME}.') from None
    except (OSError, ValueError, TypeError) as error:
        raise BackupRefused(f'{path} cannot be read as a backup manifest ({error}).') from None
    if manifest.engine not in ('sqlite', 'postgresql') or manifest.secret not in ('file', 'environment', 'missing'):
        raise BackupRefused(f'{path} cannot be read as a backup manifest (engine or secret unknown).')
    return manifest


def app_version() -> str:
    return version.app_version()  # also where no pyproject.toml is (an installed wheel)


def _engine_of(settings: Settings) -> Engine:
    backend = make_url(settings.resolved_database_url).get_backend_name()
    if backend not in ('sqlite', 'postgresql'):
        raise BackupRefused(f'Backups know SQLite and PostgreSQL, not {backend}.')
    return backend


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.resolved_database_url).database
    if not database or database == ':memory:':
        raise BackupRefused('The configured SQLite database is in memory: there is nothing on disk to back up.')
    return Path(database)


def _prepare_target(target: Path) -> bool:
    """Make `target` a private (0700) directory to write into; True if it was created here. Never overwrites."""
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise BackupRefused(f'{target} exists and is not a directory; a backup goes into a new or empty one.')
        if any(target.iterdir()):
            raise BackupRefused(f'{target} is not empty and a backup never overwrites: choose a new or empty one.')
        target.chmod(0o700)
        return False
    try:
        target.mkdir(mode=0o700, parents=True)
    except OSError as error:
        raise BackupRefused(f'Could not create {target}: {_reason(error)}.') from None
    target.chmod(0o700)  # mkdir's mode is narrowed by the umask only, never widened: say it outright
    return True


def _copy_live_database(source: Path, destination: Path) -> tuple[str | None, int]:
    """Copy the live database at `source` with SQLite's backup API into a new 0600 file; returns the copy's schema
    revision and size. The copy is checked (integrity_check) and left in rollback-journal mode: one file."""
    _write_private(destination, b'')  # an empty file is an empty database; SQLite keeps its mode for the journal
    try:
        # mode=rw: never create a database where there was none; the timeout covers a checkpoint holding it briefly.
        live = sqlite3.connect(f'file:{quote(str(source))}?mode=rw', uri=True, timeout=15)
        copy = sqlite3.connect(destination)
        try:
            # pages=-1: in one step, under one read transaction, so concurrent commits never make it start over.
            live.backup(copy, pages=-1)
            copy.execute('PRAGMA journal_mode=DELETE')
            (verdict,) = copy.execute('PRAGMA integrity_check').fetchone()
            if verdict != 'ok':
                raise BackupRefused(f'The copy failed its integrity check ({verdict}); the database may be damaged.')
            revision = _schema_revision(copy)
        finally:
            copy.close()
            live.close()
    except BaseException:
        _remove([destination], created_dir=None)
        raise
    return revision, destination.stat().st_size


MIN_SECRET_LENGTH = 16  # as CXT_SECRET_KEY and the app's check of its generated file


def _check_backup_secret(path: Path) -> None:
    """The backup's secret file is there and could be one: the app refuses to start with an empty one."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise BackupRefused(
            f'The backup has no {SECRET_FILE_NAME}, though its manifest says it holds one: without it the stored API '
            'keys cannot be decrypted. Copy the backup again, complete.'
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise BackupRefused(f'The {SECRET_FILE_NAME} in the backup cannot be read ({error}).') from None
    if len(value) < MIN_SECRET_LENGTH:
        raise BackupRefused(
            f'The {SECRET_FILE_NAME} in the backup is empty (or too short to be one): the app would not start with '
            'it. Use a complete backup.'
        )


def _check_postgresql_empty(settings: Settings) -> None:
    """The configured PostgreSQL database holds no tables: pg_restore into one that does merges the backup's rows
    into the rows there (another organization's invitations, say)."""
    engine = create_engine(settings.resolved_database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = sorted(inspect(connection).get_table_names())
    except SQLAlchemyError as error:
        reason = str(getattr(error, 'orig', None) or error).strip().splitlines()[0]
        raise BackupRefused(f'Could not check that the PostgreSQL database is empty: {reason}.') from None
    finally:
        engine.dispose()
    if tables:
        shown = ', '.join(tables[:5]) + (', …' if len(tables) > 5 else '')
        name = make_url(settings.resolved_database_url).database
        raise BackupRefused(
            f'The PostgreSQL database {name} is not empty ({shown}); restore only into an empty one '
            '(createdb a new database and point CXT_DATABASE_URL at it).'
        )


def _check_backup_database(path: Path, manifest: Manifest) -> None:
    if not path.is_file():
        raise BackupRefused(f'The backup has no {DATABASE_FILE_NAME}.')
    try:
        # Read-only and immutable: checking the backup must not leave a journal beside it or change it.
        copy = sqlite3.connect(f'file:{quote(str(path))}?mode=ro&immutable=1', uri=True)
        try:
            (verdict,) = copy.execute('PRAGMA integrity_check').fetchone()
            revision = _schema_revision(copy)
        finally:
            copy.close()
    except sqlite3.DatabaseError as error:
        raise BackupRefused(f'{path} is not a readable SQLite database ({error}).') from None
    if verdict != 'ok':
        raise BackupRefused(f'{path} failed its integrity check ({verdict}); it was not restored.')
    if revision != manifest.schema_revision:
        raise BackupRefused(f'{path} is at schema {revision}, its manifest says {manifest.schema_revision}.')
    if revision is not None and not _known_revision(revision):
        raise BackupRefused(f'The backup is at schema {revision}, which this version of the app does not know.')


def _schema_revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute('SELECT version_num FROM alembic_version').fetchone()
    except sqlite3.OperationalError:
        return None  # no alembic_version table: never migrated
    return row[0] if row else None


def _known_revision(revision: str) -> bool:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _libpq_url(settings: Settings) -> str:
    """The configured PostgreSQL URL as libpq (pg_dump, pg_restore) reads it, without the password."""
    url = make_url(settings.resolved_database_url)
    plain = URL.create(
        'postgresql', username=url.username, host=url.host, port=url.port, database=url.database, query=url.query
    )
    return plain.render_as_string(hide_password=False)


def _write_private(path: Path, content: bytes) -> None:
    """Write a new file readable by its owner only (0600); refuses to replace an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, 'wb') as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        path.chmod(0o600)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _reason(error: BaseException) -> str:
    return (error.strerror if isinstance(error, OSError) else None) or str(error)


def _remove(paths: list[Path], *, created_dir: Path | None) -> None:
    """Undo a half-done backup or restore: what it wrote (with SQLite's journal), and the directory it made."""
    for path in paths:
        for leftover in (path, path.with_name(path.name + '-journal')):
            leftover.unlink(missing_ok=True)
    if created_dir is not None:
        try:
            created_dir.rmdir()
        except OSError:
            pass
