"""CX Toolbox Dashboard: `uv run main.py` serves the app (first-run setup at http://127.0.0.1:8080).

`uv run main.py --help` lists the operator commands (unlock an account, print a reset link, create an admin,
back up, restore).
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from services.config import ConfigError, Settings, configure, load_settings, resolve_secret_key


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        sys.exit(f'Configuration error: {error}')


def _secret_or_exit(settings: Settings) -> str:
    try:
        return resolve_secret_key(settings)
    except ConfigError as error:
        sys.exit(f'Configuration error: {error}')


# Before anything is created: the data dir, the database with its WAL/SHM and NiceGUI's storage are the owner's only.
os.umask(0o077)
settings = _settings_or_exit()
configure(settings)


def _command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='uv run main.py',
        description='Without a command: serve the dashboard. The commands are for the person running the server; '
        "each is recorded in the organization's Activity.",
    )
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    unlock = commands.add_parser('unlock', help='let an account sign in again after too many wrong passwords')
    unlock.add_argument('email')
    reset = commands.add_parser('reset-password', help='print a one-time link (1 hour) to choose a new password')
    reset.add_argument('email')
    reset_2fa = commands.add_parser(
        'reset-2fa', help="remove an account's second factor (authenticator app, recovery codes, passkeys)"
    )
    reset_2fa.add_argument('email')
    create = commands.add_parser('create-admin', help='make someone an admin (for an instance whose admins are gone)')
    create.add_argument('email')
    create.add_argument('--name', default='Admin', help='their name, for a new account (default: Admin)')
    create.add_argument('--organization', type=int, help='the organization id, when there are several')
    backup = commands.add_parser('backup', help='copy the running instance (database and secret) into a new directory')
    backup.add_argument('path', type=Path, help='a new or empty directory')
    restore = commands.add_parser('restore', help='put a backup into the data directory, which must be empty')
    restore.add_argument('path', type=Path, help='a directory made by the backup command')
    return parser


def _run_command(arguments: argparse.Namespace) -> int:
    """Run one operator command against the configured database; prints the outcome, returns the exit status."""
    import services.alerts  # noqa: F401  (on import: admins are mailed about the command's changes)
    from services import operators
    from services.db import init_database, write_scope
    from services.errors import ServiceError

    if arguments.command in {'backup', 'restore'}:
        return _run_backup_command(arguments)
    init_database(settings.resolved_database_url)
    try:
        with write_scope() as session:
            if arguments.command == 'unlock':
                forgotten = operators.unlock(session=session, email=arguments.email)
                print(f'{arguments.email} can sign in again ({forgotten} recent failed attempts forgotten).')
            elif arguments.command == 'reset-password':
                link = operators.reset_link(session=session, email=arguments.email)
                print(f'Send this link to {arguments.email}; it works once, for 1 hour:\n{link}')
            elif arguments.command == 'reset-2fa':
                from services import two_factor

                member = two_factor.reset_from_command_line(session=session, email=arguments.email)
                print(f'{member.email} has no second factor now: their next sign-in asks for the password only.')
            else:
                link = operators.create_admin(
                    session=session, email=arguments.email, name=arguments.name, organization_id=arguments.organization
                )
                print(
                    f'{arguments.email} is an admin. Send them this link to choose a password (once, 1 hour):\n{link}'
                )
    except ServiceError as error:
        print(f'Not done: {error}', file=sys.stderr)
        return 1
    return 0


def _run_backup_command(arguments: argparse.Namespace) -> int:
    """`backup` and `restore`: files only; neither migrates nor opens the app's own database connection."""
    from services import backup
    from services.errors import ServiceError

    try:
        if arguments.command == 'backup':
            made = backup.backup(settings=settings, target=arguments.path)
            print(f'Backed up to {made.target}: {", ".join(made.files)} (files 0600, directory 0700).')
            if made.manifest.engine == 'sqlite':
                print(f'Database: {made.database_bytes:,} bytes, schema {made.manifest.schema_revision}, integrity ok.')
            if made.manifest.secret == 'environment':
                print('The secret is CXT_SECRET_KEY, not a file: keep its value with this backup (it is not in it).')
            elif made.manifest.secret == 'missing':
                print('There was no secret file to copy: stored API keys cannot be revealed after a restore.')
            if made.pg_dump_command:
                print('The database is on PostgreSQL: dump it into the backup with this command (it asks for the')
                print(f'password unless PGPASSWORD or ~/.pgpass holds it):\n  {made.pg_dump_command}')
            if made.manifest.secret == 'file':
                print('Keep the backup private: its secret decrypts the stored API keys.')
        else:
            restored = backup.restore(settings=settings, source=arguments.path)
            print(f'Restored into {restored.data_dir}: {", ".join(path.name for path in restored.files)} (0600).')
            if restored.manifest.secret == 'missing':
                print('The backup had no secret: the app makes a new one, so rotate the API key to reveal it again.')
            if restored.secret_overridden:
                print('CXT_SECRET_KEY is set and wins over the restored secret file: it must be the backed-up value.')
            if restored.pg_restore_command:
                print(f'Load the dump into an empty PostgreSQL database:\n  {restored.pg_restore_command}')
            elif restored.manifest.engine == 'postgresql':
                print('This backup holds no database dump: load the pg_dump taken with it by pg_restore.')
    except ServiceError as error:
        print(f'Not done: {error}', file=sys.stderr)
        return 1
    return 0


# Commands run before NiceGUI is even imported: they start quickly and never serve.
if __name__ == '__main__' and not os.environ.get('NICEGUI_USER_SIMULATION'):
    _arguments = _command_line().parse_args()
    if _arguments.command is not None:
        sys.exit(_run_command(_arguments))

# Only now, after the commands: `restore` needs the data dir empty, without a newly generated secret in it.
secret_key = _secret_or_exit(settings)

# NiceGUI fixes its storage folder when it is imported: point it into the data dir first.
os.environ.setdefault('NICEGUI_STORAGE_PATH', str((settings.data_dir / 'nicegui').resolve()))

import uvicorn  # noqa: E402
from nicegui import app as nicegui_app  # noqa: E402
from nicegui import run, ui  # noqa: E402

from api import create_api_app  # noqa: E402
from api.host_check import install_host_check  # noqa: E402
from api.security_headers import install_security_headers  # noqa: E402
from services import alerts, crypto, invitations, key_cache, key_traffic, process_lock  # noqa: E402, F401  (alerts: on import)
from services.db import init_database, write_scope  # noqa: E402
from services.first_run import start_up_notice  # noqa: E402
from ui import housekeeping, open_pages, pages, session_routes, sign_in_binding, socket_guard  # noqa: E402  (importing pages registers every page)

if __name__ in {'__main__', '__mp_main__'}:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    run.process_pool_start_method = 'spawn'
    serving = __name__ == '__main__' and not os.environ.get('NICEGUI_USER_SIMULATION')  # not pool workers, not tests
    if serving:
        process_lock.hold_data_dir_or_exit(data_dir=settings.data_dir, database_url=settings.resolved_database_url)
    engine = init_database(settings.resolved_database_url)
    if serving:
        with write_scope() as session:
            invitations.mark_interrupted_sends(session=session)
    if serving and engine.dialect.name == 'postgresql':
        # Other processes on the same database remove members, end sessions, rotate the key: their open pages here
        # follow within a moment (on SQLite this process is the only one).
        nicegui_app.on_startup(lambda: open_pages.follow_other_processes(settings.resolved_database_url))
        nicegui_app.on_shutdown(open_pages.stop_following)
        # The widget API's per-process cache, trusted only while its listener hears itself (services/key_cache.py).
        nicegui_app.on_startup(lambda: key_cache.start(settings.resolved_database_url))
        nicegui_app.on_shutdown(key_cache.stop)
    # The widget API's request counts: written once a minute and at shutdown (services/key_traffic.py).
    nicegui_app.on_startup(key_traffic.start_flushing)
    nicegui_app.on_shutdown(key_traffic.stop_flushing)
    nicegui_app.on_startup(housekeeping.start)  # ended sessions, stale handoff codes: deleted every 10 minutes
    # Every page gives its browser a nonce its sign-in codes are bound to (no login CSRF).
    nicegui_app.add_middleware(sign_in_binding.SignInNonces, https=settings.resolved_public_url.startswith('https://'))
    nicegui_app.include_router(session_routes.router)
    nicegui_app.include_router(pages.two_factor.router)  # /login/code/start: the pending sign-in's cookie
    app = create_api_app()
    install_security_headers(app, public_url=settings.resolved_public_url)
    install_host_check(app, public_url=settings.public_url)  # DNS rebinding: only our own names
    ui.run_with(
        app,
        title='CX Toolbox Dashboard',
        language='en-US',
        storage_secret=crypto.session_secret(secret_key),
        session_middleware_kwargs={'https_only': settings.resolved_public_url.startswith('https://')},
        show_welcome_message=False,
    )
    socket_guard.install(settings.public_url)  # the page socket: own origin and own browser only
    if __name__ == '__main__' and not os.environ.get('NICEGUI_USER_SIMULATION'):
        print(f'CX Toolbox Dashboard on http://{settings.host}:{settings.port}', flush=True)
        if notice := start_up_notice(host=settings.host):
            print(notice, flush=True)
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level='warning', access_log=False, proxy_headers=True
        )
