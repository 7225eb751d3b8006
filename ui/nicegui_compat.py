"""Every use of NiceGUI's internals (names with an underscore, modules it does not document), in one place.

Each is a small named function (or, where NiceGUI asks for a method, a small mixin) so that an upgrade of NiceGUI means
re-checking this file and its test, `tests/ui/test_nicegui_compat.py`, which names the versions it was checked against.
Nothing else in production code reaches past NiceGUI's public API.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nicegui
import socketio
from nicegui import Client, core, storage
from nicegui.element import Element

SocketHandler = Callable[..., Any]


class ShownTexts(Element):
    """A mixin for an element whose browser draws texts the server does not hold as elements (a table's row template):
    `shown_texts` says what they are, so the user simulation's `should_see` and `find` look at them too."""

    def shown_texts(self) -> list:
        return []

    def _displayed_contents(self, *, only_visible: bool) -> list:
        return [*super()._displayed_contents(only_visible=only_visible), *self.shown_texts()]


@contextmanager
def acting_as_page_of(client: Client) -> Iterator[None]:
    """Inside, NiceGUI takes `client`'s request for the current one: event listeners registered and tasks created
    here act as that page's own person (listeners remember the request they were registered under)."""
    token = storage.request_contextvar.set(client.request)
    try:
        yield
    finally:
        storage.request_contextvar.reset(token)


def socket_server() -> socketio.AsyncServer:
    """NiceGUI's socket.io server, over which every page talks to the server."""
    return core.sio


def page_socket_handlers() -> dict[str, SocketHandler]:
    """NiceGUI's own handlers of the page socket's messages (`connect`, `handshake`, `event`, ...), by message name;
    a handler installed by `replace_page_socket_handlers` with `functools.wraps` counts as the one it wraps, so
    installing again (the user simulation starts the app for every test) wraps NiceGUI's handler, not a wrapper."""
    return {name: getattr(handler, '__wrapped__', handler) for name, handler in core.sio.handlers['/'].items()}


def replace_page_socket_handlers(handlers: dict[str, SocketHandler]) -> None:
    """Handle the page socket's messages named in `handlers` with these instead of NiceGUI's own."""
    for name, handler in handlers.items():
        core.sio.on(name, handler)


def accept_socket_origins(is_allowed: Callable[[str | None, dict[str, Any]], bool]) -> None:
    """Let engine.io refuse, before any socket exists, a connection whose `Origin` `is_allowed` refuses."""
    core.sio.eio.cors_allowed_origins = is_allowed


def listens(element: Element, listener_id: str) -> bool:
    """Whether `listener_id` names one of `element`'s event listeners (NiceGUI fails with a KeyError on others)."""
    return listener_id in element._event_listeners


def font_preload_links() -> str:
    """`<link rel="preload">` tags for the two fonts every page draws with (Material Icons, Roboto's latin 400), read
    from NiceGUI's own `static/fonts.css`: the browser otherwise asks for them only once the page has rendered text
    in them, which is the last step of a first load (the icon font is 126 KiB)."""
    static = Path(nicegui.__file__).parent / 'static'
    css = (static / 'fonts.css').read_text()
    wanted = []
    for block in css.split('@font-face')[1:]:
        icons = '"Material Icons";' in block
        roboto = '"Roboto"' in block and 'font-weight: 400;' in block and 'U+0000-00FF' in block
        found = re.search(r'url\((fonts/[0-9a-f]+\.woff2)\)', block)
        if (icons or roboto) and found and found.group(1) not in wanted:
            wanted.append(found.group(1))
    prefix = f'/_nicegui/{nicegui.__version__}/static/'
    return ''.join(
        f'<link rel="preload" href="{prefix}{path}" as="font" type="font/woff2" crossorigin>' for path in wanted
    )


# NiceGUI holds each event a page emits before its socket's handshake on a timer of its own (polling every 10 ms), so
# the first ones after the handshake go out in no particular order: `Sign in`, clicked right after the password was
# typed on a fresh page, could reach the server before the password did. With the implicit handshake (every page load
# but a browser's prefetch) the socket can be trusted with them at once: socket.io buffers what is emitted before it
# connects and sends it in order, after the connect the server's handshake is part of. (tests/browser/
# test_events_before_connect.py; NiceGUI 3.18's nicegui.js reads `window.did_handshake` and sets it at the handshake.)
ORDERED_EVENTS_SCRIPT = """
<script>
(() => {
  let shaken = false;
  Object.defineProperty(window, 'did_handshake', {
    configurable: true,
    get: () => shaken || window.socket?.io?.opts?.query?.implicit_handshake === true,
    set: (value) => { shaken = value; },
  });
})();
</script>
"""
