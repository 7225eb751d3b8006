"""Who is signed in, as this browser's session storage says (checked against the database by `ui/actions.py`)."""

import time
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, context

from models import User
from services.permissions import SUDO_WINDOW


def sign_in(user: User) -> None:
    """Bind this browser to `user`; signing in counts as a password entry."""
    app.storage.user.clear()
    app.storage.user.update(user_id=user.id, session_version=user.session_version, password_at=time.time())


def sign_out() -> None:
    app.storage.user.clear()


def stored_identity() -> tuple[int | None, int | None]:
    """The user id and session version this browser carries (not yet checked against the database)."""
    storage = app.storage.user
    return storage.get('user_id'), storage.get('session_version')


def password_entered() -> None:
    """The person just typed their password again: sensitive actions are open for another 10 minutes."""
    app.storage.user['password_at'] = time.time()


def password_confirmed_at() -> datetime | None:
    stamp = app.storage.user.get('password_at')
    return datetime.fromtimestamp(stamp, UTC) if stamp else None


def password_is_recent() -> bool:
    stamp = app.storage.user.get('password_at')
    return bool(stamp) and time.time() - stamp < SUDO_WINDOW.total_seconds()


def client_ip() -> str | None:
    request = context.client.request
    return request.client.host if request is not None and request.client else None


def login_redirect(request: Request) -> RedirectResponse:
    """Send an unauthenticated visit to `/login`, which brings the person back here after signing in."""
    path = request.url.path + (f'?{request.url.query}' if request.url.query else '')
    return RedirectResponse(f'/login?redirect_to={quote(path, safe="/")}')


def safe_redirect_target(target: str | None) -> str:
    """Only same-site paths: `/x` yes; `//evil`, `/\\evil`, `https://evil` and anything else go to `/`."""
    if not target or not target.startswith('/') or target.startswith(('//', '/\\')) or '\\' in target:
        return '/'
    return target
