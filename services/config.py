"""The one settings object: SPEC's CXT_* variables, read from the environment and `.env`."""

import os
import secrets
import stat
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.errors import ConfigError

SECRET_FILE_NAME = 'secret_key'
# The app's own files in the data dir: the secret, NiceGUI's storage, the process lock, the database and its journals.
APP_FILE_NAMES = (
    SECRET_FILE_NAME,
    'nicegui',
    'cxt.lock',
    *(f'cxt.sqlite3{end}' for end in ('', '-wal', '-shm', '-journal')),
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix='CXT_', env_file='.env', extra='ignore')

    host: str = '127.0.0.1'
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path('./data')
    database_url: str | None = None
    # PostgreSQL: the most connections one process opens for requests and pages (its two listeners come on top).
    database_pool_size: int = Field(default=10, ge=1, le=200)
    public_url: str | None = None
    secret_key: str | None = Field(default=None, min_length=16)

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: Literal['starttls', 'ssl', 'none'] = 'starttls'
    smtp_timeout: float = Field(default=10.0, gt=0, le=10)
    mail_from: str | None = None

    stripe_secret_key: str | None = None
    stripe_price_id: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None

    # Operations (services/logs.py, services/metrics.py): how logs are written, and whether /metrics is served.
    log_format: Literal['text', 'json'] = 'text'
    log_level: Literal['debug', 'info', 'warning', 'error'] = 'info'
    metrics_token: str | None = Field(default=None, min_length=16)

    @field_validator('log_format', 'log_level', mode='before')
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f'sqlite:///{(self.data_dir / "cxt.sqlite3").resolve()}'

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f'http://{self.host}:{self.port}').rstrip('/')

    @property
    def sender(self) -> str | None:
        return self.mail_from or self.smtp_user

    @property
    def mail_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def billing_configured(self) -> bool:
        return bool(self.stripe_secret_key)


def _is_secret(variable: str) -> bool:
    return any(word in variable for word in ('SECRET', 'PASSWORD', 'KEY', 'TOKEN'))


def load_settings() -> Settings:
    """Read the settings; a bad value raises ConfigError with one line naming the variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = 'CXT_' + str(error['loc'][0]).upper() if error['loc'] else 'configuration'
        # A secret's value is never repeated: this line goes to the start-up log.
        shown = '' if _is_secret(variable) else f' (got {error.get("input")!r})'
        raise ConfigError(f'{variable}: {error["msg"]}{shown}') from None
    make_data_dir_private(settings.data_dir)
    return settings


def make_data_dir_private(data_dir: Path) -> None:
    """Create the data dir for its owner only (0700); take group and other access away from it and from the app's
    files in it, where an older version left them open (0755, 0644). Other files in the dir are left as they are."""
    if not data_dir.exists():
        _data_dirs_made_here.add(data_dir.resolve())
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    storage = data_dir / 'nicegui'
    stored = sorted(storage.glob('storage-*.json*')) if storage.is_dir() else []
    for path in [data_dir, *(data_dir / name for name in APP_FILE_NAMES), *stored]:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077 and not path.is_symlink():
                path.chmod(mode & ~0o077)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise ConfigError(f'CXT_DATA_DIR: cannot make {path} private to this account ({error.strerror})') from None


_data_dirs_made_here: set[Path] = set()


def data_dir_made_here(data_dir: Path) -> bool:
    """Whether this process created `data_dir` (reading the settings does): a refused restore removes it again."""
    return data_dir.resolve() in _data_dirs_made_here


def resolve_secret_key(settings: Settings) -> str:
    """CXT_SECRET_KEY if set; otherwise a key generated once into the data dir (mode 0600) and reused."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / SECRET_FILE_NAME
    if not path.exists():
        value = secrets.token_urlsafe(48)
        if _write_new_file_durably(path, (value + '\n').encode()):
            return value
    value = path.read_text().strip()  # there already, or another process made it first
    if len(value) < 16:
        message = f'CXT_SECRET_KEY: the generated key in {path} is damaged; delete it to make another'
        raise ConfigError(message) from None
    return value


def _write_new_file_durably(path: Path, content: bytes) -> bool:
    """Write `path` (0600) all at once or not at all: a temporary file, fsynced, linked to its name (which fails when
    the name exists: True only if this call made it), then the directory fsynced, so the name survives a crash. A
    failure (a full disk) leaves nothing behind, never an empty file the app would refuse to start with."""
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp')
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # rename would replace a secret another process made meanwhile
        except FileExistsError:
            return False
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


_current: Settings | None = None


def configure(settings: Settings) -> None:
    """Make `settings` the process's settings (main.py at start-up, tests per test)."""
    global _current
    _current = settings


def current_settings() -> Settings:
    if _current is None:
        raise RuntimeError('services.config.configure() has not been called')
    return _current
