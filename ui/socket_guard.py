"""Only a page's own browser, from the app's own origin, may use that page's socket.

NiceGUI's socket server accepts every origin (`cors_allowed_origins='*'`) and joins a socket to whichever page its
`client_id` names, without asking whose page it is; its message handlers likewise trust the `client_id` inside each
message. That id and `tab_id` travel in the socket URL, which proxies write to their access logs, so whoever reads a
log (or is handed the ids) could watch an admin's page and press its buttons as the admin. NiceGUI's handlers are
therefore wrapped here: each checks, then hands over to NiceGUI unchanged.
"""

import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nicegui import Client
from socketio.exceptions import ConnectionRefusedError as SocketRefused
from starlette.requests import cookie_parser

from ui import nicegui_compat
from ui.session import COOKIE as SIGN_IN_COOKIE

log = logging.getLogger(__name__)

DEFAULT_PORTS = {'http': 80, 'https': 443}


def install(public_url: str | None) -> None:
    """Guard NiceGUI's page socket; call right after `ui.run_with(...)`.

    `public_url` is `CXT_PUBLIC_URL` as configured; when unset, a socket must come from the host it connects to.
    """
    sio = nicegui_compat.socket_server()
    public_origin = _origin(public_url) if public_url else None

    def is_own_origin(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return False  # not a page in a browser (engine.io lets these through; the connect check does not)
        if public_origin is not None:
            return origin.lower() == public_origin
        # The scheme as uvicorn saw it (it honours X-Forwarded-Proto from trusted proxies only), not engine.io's
        # `wsgi.url_scheme`, which takes that header from anyone.
        scheme = 'https' if environ.get('asgi.scope', {}).get('scheme') in {'https', 'wss'} else 'http'
        host = environ.get('HTTP_HOST')
        return host is not None and origin.lower() == f'{scheme}://{host}'.lower()

    def may_attach(environ: dict[str, Any] | None, handshake: Any) -> bool:
        """A well-formed handshake whose socket's signed session cookie names the browser that requested the page, and
        whose sign-in cookie is the one the page was loaded with: NiceGUI's browser cookie stays the same across a
        sign-in, so one planted before it would otherwise open the signed-in pages too; the sign-in cookie is new at
        every sign-in and never known to anyone else."""
        client = Client.instances.get(handshake['client_id']) if _is_handshake(handshake) else None
        if client is None or environ is None:
            return False  # NiceGUI refuses these as well (a page gone since, e.g. after a restart)
        page_browser = _browser_id(client.request.scope)
        if page_browser is None or page_browser != _browser_id(environ.get('asgi.scope', {})):
            log.warning('Refused a socket that named a page of another browser session')
            return False
        if client.request.cookies.get(SIGN_IN_COOKIE) != cookie_parser(environ.get('HTTP_COOKIE', '')).get(
            SIGN_IN_COOKIE
        ):
            log.warning('Refused a socket that named a page of another sign-in')
            return False
        return True

    def attached_client(sid: str, msg: Any) -> Client | None:
        """The page this socket joined itself, if the message names it; never a page it merely knows the id of."""
        client_id = msg.get('client_id') if isinstance(msg, dict) else None
        if not isinstance(client_id, str) or client_id not in sio.rooms(sid):
            return None  # NiceGUI puts a socket into its page's room only after the (guarded) handshake
        return Client.instances.get(client_id)

    original = nicegui_compat.page_socket_handlers()  # NiceGUI's own, also when installed again

    @functools.wraps(original['connect'])
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not is_own_origin(environ.get('HTTP_ORIGIN'), environ):
            raise SocketRefused('origin not allowed')
        query = {name: values[0] for name, values in parse_qs(environ.get('QUERY_STRING', '')).items()}
        # With `implicit_handshake` NiceGUI's connect handler joins the page itself, bypassing the `handshake` event.
        implicit = query.get('implicit_handshake') == 'true'
        if implicit and isinstance(query.get('client_id'), str) and query['client_id'] not in Client.instances:
            # The page is gone (the server restarted, or the page was away too long): NiceGUI's own refusal, on which
            # its page script reloads. The reload builds a new page (the address keeps its tab), so this cannot loop.
            raise SocketRefused('Implicit handshake failed')
        if implicit and not may_attach(environ, query):
            # Not NiceGUI's 'Implicit handshake failed', on which its page script reloads: a browser that keeps no
            # cookies would reload forever.
            raise SocketRefused('handshake refused')
        await original['connect'](sid, environ, auth)

    @functools.wraps(original['handshake'])
    async def handshake(sid: str, data: Any) -> bool:
        if not may_attach(sio.get_environ(sid), data):
            return False
        return await original['handshake'](sid, data)

    @functools.wraps(original['event'])
    def event(sid: str, msg: Any) -> None:
        client = attached_client(sid, msg)
        if client is not None and _is_known_event(client, msg):
            original['event'](sid, msg)

    @functools.wraps(original['javascript_response'])
    def javascript_response(sid: str, msg: Any) -> None:
        if attached_client(sid, msg) is not None and isinstance(msg.get('request_id'), str):
            original['javascript_response'](sid, msg)

    @functools.wraps(original['ack'])
    def ack(sid: str, msg: Any) -> None:
        if attached_client(sid, msg) is not None and type(msg.get('next_message_id')) is int:
            original['ack'](sid, msg)

    @functools.wraps(original['log'])
    def log_message(sid: str, msg: Any) -> None:
        """Dropped: the browser's console shows it already, and in our log it would be a line anyone can write."""

    nicegui_compat.accept_socket_origins(is_own_origin)  # a foreign Origin is refused before any socket exists
    nicegui_compat.replace_page_socket_handlers(
        {
            'connect': connect,
            'handshake': handshake,
            'event': event,
            'javascript_response': javascript_response,
            'ack': ack,
            'log': log_message,
        }
    )


def _origin(url: str) -> str:
    """`https://Example.com:443/app/` -> `https://example.com`, the way a browser writes its `Origin` header."""
    parts = urlsplit(url)
    host = parts.hostname or ''
    host = f'[{host}]' if ':' in host else host
    port = f':{parts.port}' if parts.port and parts.port != DEFAULT_PORTS.get(parts.scheme) else ''
    return f'{parts.scheme.lower()}://{host}{port}'


def _browser_id(scope: Mapping[str, Any]) -> str | None:
    """NiceGUI's browser id, from the session Starlette's SessionMiddleware verified (signed cookie) into the scope."""
    session = scope.get('session')
    browser_id = session.get('id') if isinstance(session, dict) else None
    return browser_id if isinstance(browser_id, str) else None


def _is_handshake(data: Any) -> bool:
    """Shaped like what NiceGUI's page script sends; NiceGUI itself would fail on anything else with a traceback."""
    if not isinstance(data, dict):
        return False
    old_tab_id, next_message_id = data.get('old_tab_id'), data.get('next_message_id')
    return (
        all(isinstance(data.get(key), str) for key in ('client_id', 'tab_id', 'document_id'))
        and (old_tab_id is None or isinstance(old_tab_id, str))
        and (
            next_message_id is None
            or type(next_message_id) is int
            or (isinstance(next_message_id, str) and next_message_id.isascii() and next_message_id.isdigit())
        )
    )


def _is_known_event(client: Client, msg: dict[str, Any]) -> bool:
    """An event for one of the page's elements and one of its listeners; NiceGUI raises KeyError for the rest."""
    element_id, listener_id, args = msg.get('id'), msg.get('listener_id'), msg.get('args', [])
    element = client.elements.get(element_id) if type(element_id) is int else None
    return (
        element is not None
        and isinstance(listener_id, str)
        and nicegui_compat.listens(element, listener_id)
        and isinstance(args, list)
        and all(arg is None or isinstance(arg, str) for arg in args)
    )
