"""NiceGUI's page socket attacked from outside the page, against the real app (`main.py`) and a real Chromium.

The intruder knows everything about the admin's dashboard: its `client_id` and `tab_id` (in the socket URL, so in
proxy access logs) and the ids of its `Reveal API Key` button and that button's click listener. What it must not
manage: join the page (and so read the key the page reveals) or press the button (revealing the key as the admin).
"""

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
import socketio
from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright, expect
from socketio.exceptions import ConnectionError as SocketConnectionError

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, KEY, MASKED_KEY, ORGANIZATION, REPO_ROOT
from ui.session import COOKIE as SIGN_IN_COOKIE

CHROMIUM = Path('/usr/bin/chromium')
EVIL_ORIGIN = 'http://evil.example'
KEY_IN_TEXT = re.compile(r'cxt_[A-Za-z0-9]{40}')
QUIET = 1.0  # seconds to wait for something that must not happen

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope='module')]


@dataclass(frozen=True)
class PageIds:
    client_id: str
    tab_id: str


@dataclass(frozen=True)
class Listener:
    element_id: int
    listener_id: str


@dataclass(frozen=True)
class AdminPage:
    page: Page
    ids: PageIds
    reveal: Listener  # the `Reveal API Key` button's click
    cookie: str  # the browser's signed `session` cookie


class Intruder:
    """A socket.io client speaking NiceGUI's protocol, from whatever origin and with whatever cookie it likes."""

    def __init__(self, app: AppProcess) -> None:
        self.app = app
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.client.on('*', self._record)

    async def _record(self, event: str, *args: Any) -> None:
        self.received.append((event, args))

    async def connect(
        self,
        *,
        origin: str | None,
        cookie: str | None,
        join: PageIds | None = None,
        transport: str = 'websocket',
        signed_in: str | None = None,
    ) -> bool:
        """Open a socket; with `join`, ask to join that page in the socket URL, as NiceGUI's page script does.
        `cookie` is NiceGUI's browser cookie, `signed_in` the dashboard's own session cookie."""
        query = {'implicit_handshake': 'true', **handshake_data(join)} if join else {}
        headers = {'Origin': origin} if origin else {}
        cookies = [f'session={cookie}'] if cookie else []
        cookies += [f'{SIGN_IN_COOKIE}={signed_in}'] if signed_in else []
        if cookies:
            headers['Cookie'] = '; '.join(cookies)
        try:
            await self.client.connect(
                f'{self.app.url}/?{urlencode(query)}',
                socketio_path='/_nicegui_ws/socket.io',
                headers=headers,
                transports=[transport],
                wait_timeout=5,
            )
        except SocketConnectionError:
            return False
        return True

    async def handshake(self, ids: PageIds) -> bool:
        """Ask to join a page later, with NiceGUI's `handshake` event."""
        return await self.client.call('handshake', handshake_data(ids), timeout=5) is True

    async def click(self, ids: PageIds, listener: Listener) -> None:
        await self.client.emit('event', click_event(ids, listener))

    def saw_the_key(self) -> bool:
        return any(KEY_IN_TEXT.search(json.dumps(args, default=str)) for _, args in self.received)

    async def close(self) -> None:
        await self.client.disconnect()
        await self.client.shutdown()


@pytest.fixture(scope='module')
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    if not CHROMIUM.exists():
        pytest.skip(f'no Chromium at {CHROMIUM}: install the `chromium` package (.ci/run does) to run browser tests')
    app = AppProcess(REPO_ROOT, tmp_path_factory.mktemp('app')).start()
    yield app
    app.stop()


@pytest_asyncio.fixture(scope='module', loop_scope='module')
async def browser(app: AppProcess) -> AsyncIterator[Browser]:
    """Chromium, after the module's app got its organization, admin and API key."""
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=['--no-sandbox', '--disable-gpu'])
        context = await browser.new_context(base_url=app.url)
        await set_up_organization(await context.new_page())
        await context.close()
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope='module')
async def admin(app: AppProcess, browser: Browser) -> AsyncIterator[AdminPage]:
    """The admin's dashboard in a browser of its own, the key still masked."""
    context = await browser.new_context(base_url=app.url)
    page = await sign_in(context)
    await expect(api_key_field(page)).to_have_value(MASKED_KEY)
    yield AdminPage(page, await page_ids(page), await reveal_listener(page), await session_cookie(context))
    await context.close()


@pytest_asyncio.fixture(loop_scope='module')
async def intruders(app: AppProcess) -> AsyncIterator[Callable[..., Intruder]]:
    """Make intruders, one socket each (on the module's app unless told otherwise); all are closed afterwards."""
    made: list[Intruder] = []

    def make(target: AppProcess = app) -> Intruder:
        made.append(Intruder(target))
        return made[-1]

    yield make
    for intruder in made:
        await intruder.close()


async def test_a_socket_from_another_origin_is_refused_even_with_the_admins_cookie(
    app: AppProcess, admin: AdminPage, intruders: Callable[..., Intruder]
) -> None:
    # What a page on a sibling origin (another port or subdomain of the same site) gets: the browser adds the cookie.
    joiner = intruders()
    assert not await joiner.connect(origin=EVIL_ORIGIN, cookie=admin.cookie, join=admin.ids)
    # engine.io refuses it before any socket exists, and lets no foreign page read a polling response
    async with httpx.AsyncClient(base_url=app.url) as http:
        polling = await http.get(
            '/_nicegui_ws/socket.io/',
            params={'EIO': '4', 'transport': 'polling'},
            headers={'Origin': EVIL_ORIGIN, 'Cookie': f'session={admin.cookie}'},
        )
    assert polling.status_code == 400
    assert 'access-control-allow-origin' not in polling.headers
    await the_key_stays_with_the_admin(admin, joiner)


async def test_a_socket_without_an_origin_is_refused_even_with_the_admins_cookie(
    admin: AdminPage, intruders: Callable[..., Intruder]
) -> None:
    joiner = intruders()
    assert not await joiner.connect(origin=None, cookie=admin.cookie, join=admin.ids)
    await the_key_stays_with_the_admin(admin, joiner)


async def test_the_right_origin_without_a_cookie_can_neither_join_nor_click(
    app: AppProcess, admin: AdminPage, intruders: Callable[..., Intruder]
) -> None:
    joiner, clicker = intruders(), intruders()
    assert not await joiner.connect(origin=app.url, cookie=None, join=admin.ids)
    assert await clicker.connect(origin=app.url, cookie=None)  # a socket that names no page joins none
    assert not await clicker.handshake(admin.ids)
    await clicker.click(admin.ids, admin.reveal)
    await the_key_stays_with_the_admin(admin, joiner, clicker)


async def test_another_browsers_cookie_can_neither_join_nor_click(
    app: AppProcess, browser: Browser, admin: AdminPage, intruders: Callable[..., Intruder]
) -> None:
    other = await browser.new_context(base_url=app.url)
    other_page = await other.new_page()
    await other_page.goto('/login')
    other_cookie = await session_cookie(other)

    joiner, clicker = intruders(), intruders()
    assert not await joiner.connect(origin=app.url, cookie=other_cookie, join=admin.ids)
    assert await clicker.connect(origin=app.url, cookie=other_cookie)
    assert not await clicker.handshake(admin.ids)
    await clicker.click(admin.ids, admin.reveal)
    # The other browser's page socket itself (joined to its own page) names the admin's page in an event.
    await other_page.evaluate('(event) => window.socket.emit("event", event)', click_event(admin.ids, admin.reveal))
    await the_key_stays_with_the_admin(admin, joiner, clicker)
    await other.close()


async def test_the_pages_own_browser_may_open_another_socket_but_nobody_else(
    app: AppProcess, admin: AdminPage, intruders: Callable[..., Intruder]
) -> None:
    """What a page reconnecting over WebSocket or polling does works for its own browser only."""
    for transport in ('websocket', 'polling'):
        tab = await admin.page.context.new_page()  # another of the admin's pages: a second socket would end this one
        await tab.goto('/')
        ids = await page_ids(tab)
        signed_in = await sign_in_cookie(admin.page.context)
        assert await intruders().connect(
            origin=app.url, cookie=admin.cookie, join=ids, transport=transport, signed_in=signed_in
        )
        assert not await intruders().connect(origin=app.url, cookie=admin.cookie, join=ids, transport=transport)
        assert not await intruders().connect(origin=app.url, cookie=None, join=ids, transport=transport)
    await the_admin_reveals_the_key(admin)


async def test_with_a_public_url_only_its_origin_may_connect(
    browser: Browser, intruders: Callable[..., Intruder], tmp_path: Path
) -> None:
    """`CXT_PUBLIC_URL` names the one origin: the host a socket connects to no longer counts."""
    app = AppProcess(REPO_ROOT, tmp_path)
    public_url = f'http://localhost:{app.port}'
    app.extra_env['CXT_PUBLIC_URL'] = public_url
    app.start()
    try:
        context = await browser.new_context(base_url=public_url)
        page = await context.new_page()
        await page.goto('/setup')
        ids = await page_ids(page)
        # The same server under another name: http://127.0.0.1:<port>, with the page's own cookie.
        joiner = intruders(app)
        assert not await joiner.connect(origin=app.url, cookie=await session_cookie(context), join=ids)
        await set_up_organization(page)  # while the page at the public URL works
        assert not joiner.saw_the_key()
        await context.close()
    finally:
        app.stop()


async def test_messages_the_page_never_sends_leave_no_trace_in_the_log(app: AppProcess, admin: AdminPage) -> None:
    before = app.log_path.stat().st_size
    client_id, button = admin.ids.client_id, admin.reveal.element_id
    forged = [
        ('log', {'client_id': client_id, 'level': 'error', 'message': 'forged\n2026-01-01 ERROR admin: forged'}),
        ('log', {'client_id': client_id, 'level': 'fatal', 'message': 'unknown level'}),
        ('log', 'not even an object'),
        ('event', {'id': 999_999, 'client_id': client_id, 'listener_id': admin.reveal.listener_id, 'args': []}),
        ('event', {'id': button, 'client_id': client_id, 'listener_id': 'no-such-listener', 'args': []}),
        ('event', {'id': button, 'client_id': client_id, 'listener_id': admin.reveal.listener_id, 'args': 1}),
        ('event', {'id': [], 'client_id': client_id, 'listener_id': {}}),
        ('event', {'client_id': client_id}),
        ('ack', {'client_id': client_id, 'next_message_id': 'soon'}),
        ('javascript_response', {'client_id': client_id, 'request_id': ['unhashable']}),
        ('handshake', {'client_id': client_id}),
        ('handshake', 'not even an object'),
    ]
    # Sent by the admin's own page socket, the one socket that may speak for this page.
    await admin.page.evaluate(
        '(messages) => messages.forEach(([name, data]) => window.socket.emit(name, data))', forged
    )
    await the_admin_reveals_the_key(admin)  # the page still works, and the forged messages were handled before

    log = app.log_path.read_bytes()[before:].decode(errors='replace')
    assert 'Traceback' not in log
    assert ' ERROR ' not in log
    assert 'forged' not in log
    assert 'unknown level' not in log


def handshake_data(ids: PageIds) -> dict[str, str]:
    return {'client_id': ids.client_id, 'tab_id': ids.tab_id, 'document_id': str(uuid.uuid4())}


def click_event(ids: PageIds, listener: Listener) -> dict[str, Any]:
    """The message NiceGUI's page script sends for a click."""
    return {'id': listener.element_id, 'client_id': ids.client_id, 'listener_id': listener.listener_id, 'args': []}


async def the_key_stays_with_the_admin(admin: AdminPage, *intruders: Intruder) -> None:
    """Nothing the intruders did revealed the key; when the admin reveals it, none of them sees it."""
    await asyncio.sleep(QUIET)
    await expect(api_key_field(admin.page)).to_have_value(MASKED_KEY)
    await the_admin_reveals_the_key(admin)
    await asyncio.sleep(QUIET)
    for intruder in intruders:
        assert not intruder.saw_the_key(), intruder.received


async def the_admin_reveals_the_key(admin: AdminPage) -> None:
    await reveal_button(admin.page).click()
    await expect(api_key_field(admin.page)).to_have_value(KEY)


async def set_up_organization(page: Page) -> None:
    """First-run setup, then the admin generates the organization's API key."""
    await page.goto('/setup')
    await page.get_by_label('Organization name').fill(ORGANIZATION)
    await page.get_by_label('Your name').fill(ADMIN.name)
    await page.get_by_label('Email').fill(ADMIN.email)
    await page.get_by_label('Password').fill(ADMIN.password)
    await page.get_by_role('button', name='Create organization').click()
    await page.get_by_role('button', name='Generate API Key', exact=True).click()
    await expect(api_key_field(page)).to_have_value(KEY)


async def sign_in(context: BrowserContext) -> Page:
    page = await context.new_page()
    await page.goto('/login')
    await page.get_by_label('Email').fill(ADMIN.email)
    await page.get_by_label('Password').fill(ADMIN.password)
    await page.get_by_role('button', name='Sign in').click()
    await expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible(timeout=15_000)
    return page


async def page_ids(page: Page) -> PageIds:
    client_id, tab_id = await page.evaluate('[window.clientId, sessionStorage.__nicegui_tab_id]')
    return PageIds(client_id, tab_id)


async def reveal_listener(page: Page) -> Listener:
    element_id = int((await reveal_button(page).get_attribute('id') or '').removeprefix('c'))  # rendered as `c<id>`
    listener_id = await page.evaluate(
        '(id) => mounted_app.elements[id].events.find((event) => event.type === "click").listener_id', element_id
    )
    return Listener(element_id, listener_id)


async def session_cookie(context: BrowserContext) -> str:
    return next(cookie.get('value', '') for cookie in await context.cookies() if cookie.get('name') == 'session')


async def sign_in_cookie(context: BrowserContext) -> str:
    return next(cookie.get('value', '') for cookie in await context.cookies() if cookie.get('name') == SIGN_IN_COOKIE)


def reveal_button(page: Page) -> Locator:
    return page.get_by_role('button', name='Reveal API Key', exact=True)


def api_key_field(page: Page) -> Locator:
    return page.get_by_label('API Key')


async def test_a_browser_cookie_planted_before_sign_in_does_not_open_the_admins_page(
    app: AppProcess, browser: Browser, intruders: Callable[..., Intruder]
) -> None:
    """NiceGUI's browser cookie is the same before and after a sign-in: planted in the admin's browser beforehand
    (a sibling subdomain can set it), it names the admin's signed-in pages too. The page is the session's, not the
    browser cookie's."""
    visit = await browser.new_context(base_url=app.url)
    await (await visit.new_page()).goto('/login')
    planted = await session_cookie(visit)  # the attacker's own visit: a cookie the server signed
    await visit.close()
    victim = await browser.new_context(base_url=app.url)
    await victim.add_cookies([{'name': 'session', 'value': planted, 'url': app.url}])
    page = await sign_in(victim)
    await expect(api_key_field(page)).to_have_value(MASKED_KEY)
    admin = AdminPage(page, await page_ids(page), await reveal_listener(page), planted)

    joiner, clicker = intruders(), intruders()
    assert not await joiner.connect(origin=app.url, cookie=planted, join=admin.ids)
    assert await clicker.connect(origin=app.url, cookie=planted)
    assert not await clicker.handshake(admin.ids)
    await clicker.click(admin.ids, admin.reveal)
    await the_key_stays_with_the_admin(admin, joiner, clicker)
    await victim.close()
