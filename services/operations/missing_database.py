"""Start-up on a data directory whose SQLite database is gone while its secret is still there.

That is an instance whose database was deleted or moved, not a new one: starting would create an empty database,
and `/setup` would then hand the instance to whoever reaches it first. So the process and the operator commands
refuse, with one line naming the file and the way back; `--new-instance` starts an empty instance there on purpose.
"""

from pathlib import Path

from sqlalchemy import make_url

from services.config import SECRET_FILE_NAME, Settings

NEW_INSTANCE_FLAG = '--new-instance'


def refusal(settings: Settings) -> str | None:
    """The one line to stop with when the data directory holds a secret but the SQLite database is missing."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != 'sqlite' or not url.database or url.database == ':memory:':
        return None
    database = Path(url.database).resolve()
    secret = settings.data_dir / SECRET_FILE_NAME
    if database.exists() or not secret.is_file():
        return None
    return (
        f'Not starting: the database {database} is missing, but {secret.resolve()} is there, so this instance had '
        'one (deleted or moved?). Put it back, or restore a backup with `uv run main.py restore BACKUP` (into an '
        f'empty data directory: move this one aside), or start a new, empty instance here with '
        f'`uv run main.py {NEW_INSTANCE_FLAG}`.'
    )
