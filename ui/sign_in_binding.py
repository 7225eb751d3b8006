"""A sign-in's handoff code works only in the browser whose page signed in (no login CSRF).

The handoff routes (`/session/start`, `/login/code/start`) set a cookie for whoever opens them with a fresh code. On
their own, an attacker could sign in to their own account, keep the code, and have a victim's browser open the link
(a cross-site top-level GET): the victim would be signed in as the attacker, their own session ended.

So every page response gives its browser a fresh random nonce in an HttpOnly cookie (the last `KEPT` of them, so
several open sign-in tabs each keep theirs), and the page, which knows the nonce it was served with, sends its
browser on with `bind`: an HMAC of that nonce and the code under the server secret. The route redeems the code only
when one of the browser's nonces matches. A foreign browser holds other nonces; a nonce planted before the page
loaded is not the page's own, and nobody but the browser (HttpOnly) and the server ever sees the page's one.
"""

import hmac
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Request
from nicegui import context, ui
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import crypto

COOKIE = 'cxt_sign_in'
KEPT = 8  # nonces a browser keeps: sign-in pages open at once in one browser
MAX_AGE = 24 * 3600
BIND_PARAMETER = 'bind'
_STATE_KEY = 'cxt_sign_in_nonce'
_NONCE = re.compile(r'[A-Za-z0-9_-]{22}')
_SKIPPED_PREFIXES = ('/_nicegui', '/api/')


class SignInNonces:
    """Pure ASGI middleware for NiceGUI's app: a new nonce for every page (an HTML response to a GET), kept in the
    request's state for the page and added in front of the browser's earlier ones in the cookie."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get('path', '')
        if scope['type'] != 'http' or scope.get('method') != 'GET' or path.startswith(_SKIPPED_PREFIXES):
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault('state', {})[_STATE_KEY] = nonce
        earlier = _nonces(_cookie_header(scope))[: KEPT - 1]

        async def send_with_cookie(message: Message) -> None:
            if message['type'] == 'http.response.start' and message['status'] == 200:
                headers = MutableHeaders(scope=message)
                if headers.get('content-type', '').startswith('text/html'):
                    value = '.'.join([nonce, *earlier][:KEPT])
                    secure = '; Secure' if self.https else ''
                    headers.append(
                        'set-cookie', f'{COOKIE}={value}; Max-Age={MAX_AGE}; Path=/; HttpOnly; SameSite=Lax{secure}'
                    )
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def go(url: str) -> None:
    """Send this page's browser to a handoff URL (`session.next_url`, `session.start_url`), bound to it."""
    ui.navigate.to(bind(url, page_nonce()))


def page_nonce() -> str | None:
    """The nonce this page was served with (in its browser's cookie since)."""
    request = context.client.request
    nonce = getattr(request.state, _STATE_KEY, None) if request is not None else None
    return nonce if isinstance(nonce, str) else None


def bind(url: str, nonce: str | None) -> str:
    """`url` with `bind` for its `code` and the browser's `nonce` (unchanged without either: the route refuses it)."""
    code = parse_qs(urlsplit(url).query).get('code', [''])[0]
    if not code or not nonce:
        return url
    return f'{url}{"&" if "?" in url else "?"}{urlencode({BIND_PARAMETER: binding(nonce, code)})}'


def bind_for_route(url: str, request: Request) -> str:
    """`url` bound to the browser that sent `request`, for a plain HTTP route that hands over a code it made for this
    very request (single sign-on's callback, whose `state` already proved it is the browser that started)."""
    held = _nonces(request.headers.get('cookie', ''))
    return bind(url, held[0] if held else None)


def is_bound(request: Request, *, code: str, bind: str) -> bool:
    """The code was handed to this browser: one of its nonces gives `bind`."""
    if not code or not bind:
        return False
    held = _nonces(request.headers.get('cookie', ''))
    return any(hmac.compare_digest(binding(nonce, code), bind) for nonce in held)


def binding(nonce: str, code: str) -> str:
    """The `bind` value of `code` for a browser holding `nonce`."""
    return crypto.keyed_digest('sign-in-binding', f'{nonce}:{code}')


def _nonces(cookie_header: str) -> list[str]:
    """The nonces in every cookie of that name the browser sent (one planted for a parent domain comes along too; a
    parser keeping one value per name could hide ours behind it)."""
    found: list[str] = []
    for pair in cookie_header.split(';'):
        name, _, value = pair.strip().partition('=')
        if name == COOKIE:
            found += [nonce for nonce in value.strip('"').split('.')[:KEPT] if _NONCE.fullmatch(nonce)]
    return list(dict.fromkeys(found))


def _cookie_header(scope: Scope) -> str:
    return '; '.join(value.decode('latin-1') for key, value in scope.get('headers', []) if key == b'cookie')
