"""This browser's session: the cookie that names its row in the database, and what the page request says about it.

The row is checked on every page load and every page event (`ui/actions.py`); nothing about who is signed in is
kept in process memory or in NiceGUI's per-process storage.
"""

from urllib.parse import quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import context

from services.identity import sessions
from services.identity.next_step import Next, NextStep

COOKIE = 'cxt_session'
START_PATH = '/session/start'
SECOND_STEP_START_PATH = '/login/code/start'  # `ui/pages/two_factor.py`: the pending sign-in's cookie


def browser_token() -> str | None:
    """The session token this page was loaded with (its events carry the same page request); None without a
    cookie or with one the server did not sign."""
    request = context.client.request
    return sessions.token_from_cookie(request.cookies.get(COOKIE)) if request is not None else None


def client_ip() -> str | None:
    request = context.client.request
    return request.client.host if request is not None and request.client else None


def user_agent() -> str | None:
    request = context.client.request
    return request.headers.get('user-agent') if request is not None else None


def start_url(handoff_code: str, target: str = '/') -> str:
    """Where a page goes right after a sign-in: the route that sets the new session's cookie, then `target`."""
    return f'{START_PATH}?{urlencode({"code": handoff_code, "next": safe_redirect_target(target)})}'


def next_url(next_step: Next, target: str = '/') -> str:
    """Where a sign-in sends the browser: the route that trades its handoff code for the session's cookie, or for the
    pending sign-in's cookie before the second step; `target` after that."""
    path = SECOND_STEP_START_PATH if next_step.step == NextStep.SECOND_STEP else START_PATH
    return f'{path}?{urlencode({"code": next_step.handoff, "next": safe_redirect_target(target)})}'


def login_redirect(request: Request) -> RedirectResponse:
    """Send an unauthenticated visit to `/login`, which brings the person back here after signing in."""
    path = request.url.path + (f'?{request.url.query}' if request.url.query else '')
    return RedirectResponse(f'/login?redirect_to={quote(path, safe="/")}')


def safe_redirect_target(target: str | None) -> str:
    """Only a path on this site: `/x?y` yes; `//evil`, `/\\evil`, `/%09/evil`, `https://evil` and anything with a
    control character, a backslash or a scheme go to `/`."""
    if not target or not _is_local_path(target) or _has_unsafe_character(target):
        return '/'
    try:
        parts = urlsplit(target)
    except ValueError:
        return '/'
    if parts.scheme or parts.netloc or not _is_local_path(parts.path):
        return '/'
    return target


def _is_local_path(path: str) -> bool:
    """Starts at this site's root (`//host` names another site)."""
    return path.startswith('/') and not path.startswith('//')


def _has_unsafe_character(target: str) -> bool:
    return any(ord(char) < 0x21 or ord(char) == 0x7F or char == '\\' for char in target)
