"""`ui/nicegui_compat.py`, the one place that uses NiceGUI's internals: each shim does what the app relies on, with the
NiceGUI installed. An upgrade of NiceGUI fails the first test until someone has checked the shims (and this file)
against the new version and added it to `CHECKED_VERSIONS`."""

import asyncio
import re
from collections.abc import Callable
from typing import Any

import nicegui
import socketio
from nicegui import background_tasks, storage, ui
from nicegui.testing import User

from ui import nicegui_compat

CHECKED_VERSIONS = ['3.18.0']
DRAWN = 'Drawn by the browser'


class DrawnInTheBrowser(nicegui_compat.ShownTexts):
    """Like a table's row template: text the server holds as data, not as elements."""

    def shown_texts(self) -> list:
        return [DRAWN]


def test_the_installed_nicegui_is_one_the_shims_were_checked_against() -> None:
    assert nicegui.__version__ in CHECKED_VERSIONS, (
        f'NiceGUI {nicegui.__version__}: check every function of ui/nicegui_compat.py against it, then add it here'
    )


async def test_texts_drawn_in_the_browser_are_seen_and_found(user: User) -> None:
    @ui.page('/compat/shown')
    def page() -> None:
        DrawnInTheBrowser().mark('drawn')

    await user.open('/compat/shown')
    await user.should_see(DRAWN)
    assert len(user.find(DRAWN).elements) == 1
    await user.should_not_see('Not drawn at all')


async def test_acting_as_another_page_gives_its_request_to_what_starts_inside(
    user: User, create_user: Callable[[], User]
) -> None:
    await user.open('/login')
    other = create_user()
    await other.open('/login')
    assert user.client is not None and other.client is not None
    before = storage.request_contextvar.get()
    seen_by_task: list[object] = []

    async def task() -> None:
        seen_by_task.append(storage.request_contextvar.get())

    with nicegui_compat.acting_as_page_of(other.client):
        assert storage.request_contextvar.get() is other.client.request
        started = background_tasks.create(task(), name='compat check')
    assert storage.request_contextvar.get() is before  # restored on leaving
    await asyncio.wait_for(started, 5)
    assert seen_by_task == [other.client.request]


async def test_the_page_socket_handlers_can_be_read_and_replaced(user: User) -> None:
    await user.open('/login')  # the app is running, its socket guard installed
    server = nicegui_compat.socket_server()
    assert isinstance(server, socketio.AsyncServer)
    own = nicegui_compat.page_socket_handlers()
    guarded = {'connect', 'handshake', 'event', 'javascript_response', 'ack', 'log'}
    assert guarded <= set(own)
    # NiceGUI's own handlers, not the guard's wrappers around them (installed again, the guard wraps these).
    assert all(own[name].__module__.startswith('nicegui') for name in guarded), {n: own[n].__module__ for n in guarded}
    installed = dict(server.handlers['/'])

    def log(sid: str, msg: Any) -> None:
        """A stand-in."""

    try:
        nicegui_compat.replace_page_socket_handlers({'log': log})
        assert server.handlers['/']['log'] is log
    finally:
        nicegui_compat.replace_page_socket_handlers({'log': installed['log']})
    assert server.handlers['/']['log'] is installed['log']


async def test_socket_origins_can_be_checked_before_a_socket_exists(user: User) -> None:
    await user.open('/login')
    server = nicegui_compat.socket_server()
    installed = server.eio.cors_allowed_origins

    def nobody(origin: str | None, environ: dict[str, Any]) -> bool:
        return False

    try:
        nicegui_compat.accept_socket_origins(nobody)
        assert server.eio.cors_allowed_origins is nobody
    finally:
        server.eio.cors_allowed_origins = installed


async def test_an_elements_listeners_are_known_by_id(user: User) -> None:
    @ui.page('/compat/listens')
    def page() -> None:
        ui.button('Press', on_click=lambda: None).mark('press')

    await user.open('/compat/listens')
    (button,) = user.find(marker='press').elements
    (listener_id,) = [listener.id for listener in button._event_listeners.values() if listener.type == 'click']
    assert nicegui_compat.listens(button, listener_id)
    assert not nicegui_compat.listens(button, 'not-a-listener')


async def test_the_fonts_every_page_draws_with_are_preloaded_from_where_nicegui_serves_them(user: User) -> None:
    links = nicegui_compat.font_preload_links()
    paths = re.findall(r'href="([^"]+)"', links)
    assert len(paths) == 2, 'Material Icons and the latin Roboto'
    for path in paths:
        response = await user.http_client.get(path)
        assert response.status_code == 200 and response.headers['content-type'] == 'font/woff2'
    response = await user.http_client.get('/login', follow_redirects=True)  # /setup on a new database
    assert links in response.text, 'every page built in the frame asks for them at once'
