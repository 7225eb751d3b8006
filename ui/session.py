"""Who is signed in: the browser session (NiceGUI's user storage) checked against the database on every use."""

import time
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, context, run, ui
from nicegui.client import Client

from models import User
from services import auth
from services.db import write_scope
from services.permissions import SUDO_WINDOW
from ui.components.busy import busy

_clients_by_user: dict[int, set[str]] = {}


def sign_in(user: User) -> None:
    """Bind this browser to `user`; signing in counts as a password entry."""
    app.storage.user.clear()
    app.storage.user.update(user_id=user.id, session_version=user.session_version, password_at=time.time())


def sign_out() -> None:
    app.storage.user.clear()


def current_user() -> User | None:
    """The signed-in user, or None when nobody is or their session was ended (removal, password reset)."""
    storage = app.storage.user
    with write_scope() as session:
        return auth.load_session_user(
            session=session,
            user_id=storage.get('user_id'),
            session_version=storage.get('session_version'),
        )


def acting_user() -> User | None:
    """For event handlers: the current user, or None after sending this page to `/login`."""
    user = current_user()
    if user is None:
        sign_out()
        ui.navigate.to('/login')
    return user


def login_redirect(request: Request) -> RedirectResponse:
    """Send an unauthenticated visit to `/login`, which brings the person back here after signing in."""
    path = request.url.path + (f'?{request.url.query}' if request.url.query else '')
    return RedirectResponse(f'/login?redirect_to={quote(path, safe="/")}')


def safe_redirect_target(target: str | None) -> str:
    """Only same-site paths: `/x` yes; `//evil`, `/\\evil`, `https://evil` and anything else go to `/`."""
    if not target or not target.startswith('/') or target.startswith(('//', '/\\')) or '\\' in target:
        return '/'
    return target


def password_confirmed_at() -> datetime | None:
    stamp = app.storage.user.get('password_at')
    return datetime.fromtimestamp(stamp, UTC) if stamp else None


def password_is_recent() -> bool:
    stamp = app.storage.user.get('password_at')
    return bool(stamp) and time.time() - stamp < SUDO_WINDOW.total_seconds()


def client_ip() -> str | None:
    request = context.client.request
    return request.client.host if request is not None and request.client else None


async def ensure_recent_password(user: User) -> bool:
    """Ask for the password again when the last entry is over 10 minutes old; True once confirmed."""
    if password_is_recent():
        return True
    with ui.dialog() as dialog, ui.card().classes('w-full max-w-sm'):
        ui.label('Confirm your password').classes('text-lg font-medium')
        ui.label('This action needs your password again.').classes('text-sm text-grey-8')
        password = ui.input('Password', password=True, password_toggle_button=True).mark('sudo-password')
        password.classes('w-full')
        password.props('autofocus autocomplete=current-password')

        async def confirm() -> None:
            with busy(button):
                ok = await run.io_bound(_check_password, user, password.value or '')
            if ok:
                app.storage.user['password_at'] = time.time()
                dialog.submit(True)
            else:
                password.error = 'Wrong password'

        password.on('keydown.enter', confirm)
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat no-caps')
            button = ui.button('Confirm', on_click=confirm).props('no-caps').mark('confirm-password')
    confirmed = await dialog
    dialog.delete()
    return bool(confirmed)


def _check_password(user: User, password: str) -> bool:
    with write_scope() as session:
        return auth.confirm_password(session=session, user=user, password=password)


def track_client(user: User) -> None:
    """Remember which user this page belongs to, so ending their sessions can close it at once."""
    client = context.client
    _clients_by_user.setdefault(user.id, set()).add(client.id)
    client.on_delete(lambda: _clients_by_user.get(user.id, set()).discard(client.id))


def end_open_pages(user_id: int) -> int:
    """Send every open page of `user_id` to `/login`; returns how many were open."""
    closed = 0
    for client_id in list(_clients_by_user.pop(user_id, set())):
        client = Client.instances.get(client_id)
        if client is not None:
            client.open('/login')
            closed += 1
    return closed
