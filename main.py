"""CX Toolbox Dashboard: `uv run main.py` serves the app (first-run setup at http://127.0.0.1:8080).

`uv run main.py --help` lists the operator commands (unlock an account, print a reset link, create an admin,
back up, restore). Installed from the wheel, the same command line is `cx-toolbox` (`cli` below).
"""

import argparse
import os
import runpy
import sys
from pathlib import Path

from services import logs
from services.config import ConfigError, Settings, configure, load_settings, resolve_secret_key
from services.operations.missing_database import NEW_INSTANCE_FLAG, refusal
from services.version import app_version

PRODUCT = 'CX Toolbox Dashboard'


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


def cli() -> None:
    """The `cx-toolbox` command (pyproject's [project.scripts]): exactly `uv run main.py`, run as `__main__`."""
    runpy.run_path(__file__, init_globals={'PROGRAM': 'cx-toolbox'}, run_name='__main__')


def _program_name() -> str:
    """What --help calls the command: `cx-toolbox` when `cli` ran this file, else the checkout's `uv run main.py`."""
    return globals().get('PROGRAM', 'uv run main.py')


def _command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        description='Without a command: serve the dashboard. The commands are for the person running the server; '
        "each is recorded in the organization's Activity.",
    )
    parser.add_argument('--version', action='version', version=f'{PRODUCT} {app_version()}')
    parser.add_argument(
        NEW_INSTANCE_FLAG,
        action='store_true',
        help='serve a new, empty instance in a data directory whose database is missing but whose secret is there',
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
    import services.team.alerts  # noqa: F401  (on import: admins are mailed about the command's changes)
    from services.db import init_database, write_scope
    from services.errors import ServiceError
    from services.operations import operators

    if arguments.command in {'backup', 'restore'}:
        return _run_backup_command(arguments)
    _refuse_a_missing_database(arguments)
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
                from services.identity import two_factor

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
    from services.errors import ServiceError
    from services.operations import backup

    try:
        if arguments.command == 'backup':
            said = backup.backup(settings=settings, target=arguments.path).report()
        else:
            said = backup.restore(settings=settings, source=arguments.path).report()
        print('\n'.join(said))
    except ServiceError as error:
        print(f'Not done: {error}', file=sys.stderr)
        return 1
    return 0


def _refuse_a_missing_database(arguments: argparse.Namespace) -> None:
    """Stop before an empty database is created where this instance's was (its secret is still there)."""
    if not arguments.new_instance and (line := refusal(settings)):
        sys.exit(line)


# Commands run before NiceGUI is even imported: they start quickly and never serve.
if __name__ == '__main__' and not os.environ.get('NICEGUI_USER_SIMULATION'):
    _arguments = _command_line().parse_args()
    if _arguments.command is not None:
        logs.configure_logging(log_format=settings.log_format, level=settings.log_level)
        sys.exit(_run_command(_arguments))
    _refuse_a_missing_database(_arguments)

# NiceGUI fixes its storage folder when it is imported: point it into the data dir first.
os.environ.setdefault('NICEGUI_STORAGE_PATH', str((settings.data_dir / 'nicegui').resolve()))

import uvicorn  # noqa: E402
from nicegui import Client, run, ui  # noqa: E402
from nicegui import app as nicegui_app  # noqa: E402

from api import create_api_app  # noqa: E402
from api.host_check import install_host_check  # noqa: E402
from api.observability import install_observability  # noqa: E402
from api.security_headers import install_security_headers  # noqa: E402
from services import crypto, key_cache, metrics  # noqa: E402
from services.db import init_database, write_scope  # noqa: E402
from services.identity import invitations  # noqa: E402
from services.keys import key_traffic  # noqa: E402
from services.operations import process_lock, send_watch  # noqa: E402
from services.team import alerts  # noqa: E402, F401  (on import: admins are mailed about changes)
from services.team.first_run import start_up_notice  # noqa: E402
from ui import (  # noqa: E402  (importing pages registers every page)
    housekeeping,
    oidc_routes,
    open_pages,
    pages,
    session_routes,
    sign_in_binding,
    socket_guard,
)


async def _watch_sends() -> None:
    send_watch.start_watching()  # what it marks reaches every process's team lists through the bus


if __name__ in {'__main__', '__mp_main__'}:
    logs.configure_logging(log_format=settings.log_format, level=settings.log_level)
    run.process_pool_start_method = 'spawn'
    serving = __name__ == '__main__' and not os.environ.get('NICEGUI_USER_SIMULATION')  # not pool workers, not tests
    if serving:  # a refused start says only why; a start that goes on says its version, then `Ready on <url>`
        process_lock.hold_data_dir_or_exit(data_dir=settings.data_dir, database_url=settings.resolved_database_url)
        logs.say('%s %s', PRODUCT, app_version())
    # Only now, after the commands: `restore` needs the data dir empty, without a newly generated secret in it.
    # (Not on a plain `import main` either: the `cx-toolbox` script imports this file before `cli` runs it.)
    secret_key = _secret_or_exit(settings)
    engine = init_database(settings.resolved_database_url)
    if serving:
        with write_scope() as session:
            if engine.dialect.name == 'postgresql':
                invitations.beat(session=session)  # first, so this process's own sends are never taken for dead
            invitations.mark_interrupted_sends(session=session)  # only those of processes that are gone
    if serving and engine.dialect.name == 'postgresql':
        # Sends cut short by another process dying: found within seconds by the processes still alive.
        nicegui_app.on_startup(_watch_sends)
        nicegui_app.on_shutdown(send_watch.stop_watching)
        # Other processes on the same database remove members, end sessions, rotate the key: their open pages here
        # follow within a moment (on SQLite this process is the only one).
        nicegui_app.on_startup(lambda: open_pages.follow_other_processes(settings.resolved_database_url))
        nicegui_app.on_shutdown(open_pages.stop_following)
        # The widget API's per-process cache, trusted only while its listener hears itself (services/key_cache.py).
        nicegui_app.on_startup(lambda: key_cache.start(settings.resolved_database_url))
        nicegui_app.on_shutdown(key_cache.stop)
    # The widget API's request counts: written once a minute and at shutdown (services/keys/key_traffic.py).
    nicegui_app.on_startup(key_traffic.start_flushing)
    nicegui_app.on_shutdown(key_traffic.stop_flushing)
    nicegui_app.on_startup(housekeeping.start)  # ended sessions, stale handoff codes: deleted every 10 minutes
    # Every page gives its browser a nonce its sign-in codes are bound to (no login CSRF).
    nicegui_app.add_middleware(sign_in_binding.SignInNonces, https=settings.resolved_public_url.startswith('https://'))
    nicegui_app.include_router(session_routes.router)
    nicegui_app.include_router(oidc_routes.router)  # /login/oidc/start and /login/oidc/callback: single sign-on
    if serving:
        nicegui_app.on_startup(oidc_routes.check_provider)  # one line: did the identity provider answer?
    nicegui_app.include_router(pages.two_factor.router)  # /login/code/start: the pending sign-in's cookie
    app = create_api_app()
    install_security_headers(app, public_url=settings.resolved_public_url)
    install_host_check(app, public_url=settings.public_url)  # DNS rebinding: only our own names
    install_observability(app, metrics_on=bool(settings.metrics_token))  # outermost: X-Request-ID on every response
    metrics.watch_ui_connections(lambda: sum(client.has_socket_connection for client in Client.instances.values()))
    ui.run_with(
        app,
        title='CX Toolbox Dashboard',
        language='en-US',
        storage_secret=crypto.session_secret(secret_key),
        session_middleware_kwargs={'https_only': settings.resolved_public_url.startswith('https://')},
        show_welcome_message=False,
        tailwind=False,  # compiled ahead of time instead: ui/tailwind.css (tests/tailwind_css.py)
    )
    socket_guard.install(settings.public_url)  # the page socket: own origin and own browser only
    pages.not_found.install()  # our own 404 page in the product's frame
    if __name__ == '__main__' and not os.environ.get('NICEGUI_USER_SIMULATION'):
        _listening = f'http://{settings.host}:{settings.port}'

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:  # the socket is bound: say so once, in the configured log format
                    logs.say('Ready on %s', _listening)
                    if notice := start_up_notice(host=settings.host):
                        logs.say('%s', notice, always=True)

        _Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level='debug' if settings.log_level == 'debug' else 'warning',
                log_config=None,  # uvicorn's warnings go through our handler, in our format
                access_log=False,  # api/observability.py logs requests (at debug)
                proxy_headers=True,
            )
        ).run()
