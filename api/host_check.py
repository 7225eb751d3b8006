"""Only requests addressed to this dashboard by name, as a pure ASGI middleware on the parent app.

DNS rebinding: a page on an attacker's name that then resolves to this machine is same-origin with the dashboard in
the victim's browser, so it could read its pages and use its socket (claim `/setup` of a fresh instance on loopback).
Such requests carry the attacker's name in `Host`. Accepted: `CXT_PUBLIC_URL`'s host, the loopback name `localhost`,
and any IP address (an address is not a name, so it cannot be rebound; health checks and `http://<server-ip>:8080`
keep working). Anything else gets 400 (a socket is closed) before any page, socket or API route sees it.
"""

import ipaddress
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({'localhost'})
REFUSAL = b'Unknown host: open the dashboard at its own address (CXT_PUBLIC_URL).\n'


def install_host_check(app: Starlette, *, public_url: str | None) -> None:
    """Refuse every request to `app` whose `Host` is not one of the expected names (call before the app starts)."""
    app.add_middleware(HostCheck, names=expected_names(public_url))


def expected_names(public_url: str | None) -> frozenset[str]:
    public_host = urlsplit(public_url).hostname if public_url else None
    return LOOPBACK_NAMES | ({public_host.lower().rstrip('.')} if public_host else set())


def is_expected(host: str | None, names: frozenset[str]) -> bool:
    """`host` is a `Host` header value (`name[:port]`, `[v6]:port`)."""
    if not host:
        return False
    try:
        name = urlsplit(f'//{host}').hostname
    except ValueError:
        return False
    if not name:
        return False
    name = name.lower().rstrip('.')
    if name in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    def __init__(self, app: ASGIApp, *, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] not in {'http', 'websocket'}:
            await self.app(scope, receive, send)
            return
        host = next((value.decode('latin-1') for key, value in scope['headers'] if key == b'host'), None)
        if is_expected(host, self.names):
            await self.app(scope, receive, send)
            return
        if scope['type'] == 'websocket':
            await receive()  # websocket.connect
            await send({'type': 'websocket.close', 'code': 1008})
            return
        await send(
            {
                'type': 'http.response.start',
                'status': 400,
                'headers': [
                    (b'content-type', b'text/plain; charset=utf-8'),
                    (b'content-length', str(len(REFUSAL)).encode()),
                ],
            }
        )
        await send({'type': 'http.response.body', 'body': REFUSAL})
