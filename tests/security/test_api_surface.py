"""The JSON API as an attacker meets it: huge webhook bodies, signed events with the wrong shapes, wrong methods and
made-up paths. Each is answered by the API, in JSON, without the body being buffered or NiceGUI being reached."""

import asyncio
import logging
import select
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select as select_rows
from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send

import api
from models import AuditEvent, Organization, StripeEvent
from services import config
from services.db import read_scope, write_scope
from tests import factories
from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT
from tests.stripe_server import StripeServer

WEBHOOK = '/api/stripe/webhook'
LIMIT = 1024 * 1024  # 1 MiB
HUGE = 200 * 1024 * 1024  # the 200 MB body of the attack
CHUNK = 64 * 1024


class Pulled:
    """A 200 MB request body made on demand, counting how much of it the server asked for."""

    def __init__(self) -> None:
        self.bytes = 0

    async def body(self) -> AsyncIterator[bytes]:
        chunk = b'x' * CHUNK
        while self.bytes < HUGE:
            self.bytes += len(chunk)
            yield chunk


class NiceGuiStandIn:
    """What main.py mounts at `/` after the API (NiceGUI): an HTML page for every request, whatever its method."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope['type'] == 'http'
        self.requests.append(f'{scope["method"]} {scope["path"]}')
        page = HTMLResponse('<html><body>404: page not found</body></html>', status_code=404)
        await page(scope, receive, send)


@pytest.fixture
def stripe_server() -> Iterator[StripeServer]:
    with StripeServer() as server:
        yield server


@pytest.fixture
def configured(database: None, stripe_server: StripeServer, monkeypatch: pytest.MonkeyPatch) -> StripeServer:
    monkeypatch.setenv('CXT_STRIPE_SECRET_KEY', 'sk_test_dashboard')
    monkeypatch.setenv('CXT_STRIPE_WEBHOOK_SECRET', stripe_server.webhook_secret)
    monkeypatch.setenv('CXT_STRIPE_API_BASE', stripe_server.url)
    config.configure(config.load_settings())
    return stripe_server


@pytest.fixture
def nicegui() -> NiceGuiStandIn:
    return NiceGuiStandIn()


@pytest.fixture
async def client(database: None, nicegui: NiceGuiStandIn) -> AsyncIterator[httpx.AsyncClient]:
    """The API app with a page app mounted at `/` after it, as main.py arranges; a crash is a 500, as served."""
    app = api.create_api_app()
    app.mount('/', nicegui)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url='http://test') as http:
        yield http


# --- webhook body size ------------------------------------------------------------------------------------------


async def test_a_declared_200_mb_webhook_body_is_refused_unread(
    client: httpx.AsyncClient, configured: StripeServer
) -> None:
    pulled = Pulled()
    response = await client.post(WEBHOOK, content=pulled.body(), headers={'Content-Length': str(HUGE)})
    assert response.status_code == 413
    assert response.json()['error'] == 'payload_too_large'
    assert response.headers['connection'] == 'close'  # the server stops reading this connection
    assert pulled.bytes <= CHUNK, f'{pulled.bytes:,} bytes were read before refusing'


async def test_a_streamed_200_mb_webhook_body_is_refused_after_1_mb(
    client: httpx.AsyncClient, configured: StripeServer
) -> None:
    pulled = Pulled()  # no Content-Length: sent chunked, its size known only by reading
    response = await client.post(WEBHOOK, content=pulled.body())
    assert response.status_code == 413
    assert pulled.bytes <= LIMIT + CHUNK, f'{pulled.bytes:,} bytes were read before refusing'
    assert await stored_rows(StripeEvent) == []


async def test_a_signed_event_just_under_1_mb_is_still_applied(
    client: httpx.AsyncClient, configured: StripeServer
) -> None:
    body, headers = configured.signed_event('customer.created', {'id': 'cus_new', 'object': 'customer'})
    padded = body[:-1] + b',"padding":"' + b'x' * (LIMIT - len(body) - 14) + b'"}'
    assert len(padded) == LIMIT - 1
    headers['Stripe-Signature'] = configured.sign(padded)
    response = await client.post(WEBHOOK, content=padded, headers=headers)
    assert response.status_code == 200
    assert response.json() == {'received': True, 'duplicate': False}


# --- signed events of the wrong shape ---------------------------------------------------------------------------


CUSTOMER = 'cus_acme'
SUBSCRIPTION = {'id': 'sub_odd', 'object': 'subscription', 'customer': CUSTOMER, 'status': 'active'}
CHECKOUT = {'id': 'cs_odd', 'object': 'checkout.session', 'mode': 'subscription', 'subscription': 'sub_odd'}
UPDATED, COMPLETED, PAYMENT_FAILED = (
    'customer.subscription.updated',
    'checkout.session.completed',
    'invoice.payment_failed',
)

# Each: the event type and its whole `data` member, signed with the right secret.
MALFORMED: dict[str, tuple[str, Any]] = {
    'data is a list': (UPDATED, ['not', 'an', 'object']),
    'data.object is a string': (UPDATED, {'object': 'sub_odd'}),
    'period end of 10^20': (UPDATED, {'object': {**SUBSCRIPTION, 'current_period_end': 10**20}}),
    'period end of 1e20': (UPDATED, {'object': {**SUBSCRIPTION, 'current_period_end': 1e20}}),
    'period end is text': (UPDATED, {'object': {**SUBSCRIPTION, 'current_period_end': 'tomorrow'}}),
    'item period ends of mixed types': (
        UPDATED,
        {'object': {**SUBSCRIPTION, 'items': {'data': [{'current_period_end': 1}, {'current_period_end': 'soon'}]}}},
    ),
    'items is a string': (UPDATED, {'object': {**SUBSCRIPTION, 'items': 'many'}}),
    'an item is a string': (UPDATED, {'object': {**SUBSCRIPTION, 'items': {'data': ['si_1']}}}),
    'metadata is a list': (UPDATED, {'object': {**SUBSCRIPTION, 'metadata': ['organization_id']}}),
    'status is an object': (UPDATED, {'object': {**SUBSCRIPTION, 'status': {'value': 'active'}}}),
    'price nickname is a number': (
        UPDATED,
        {'object': {**SUBSCRIPTION, 'items': {'data': [{'price': {'nickname': 7}}]}}},
    ),
    'checkout payment status is a list': (
        COMPLETED,
        {'object': {**CHECKOUT, 'customer': CUSTOMER, 'payment_status': ['paid']}},
    ),
    'invoice parent is a string': (PAYMENT_FAILED, {'object': {'customer': CUSTOMER, 'parent': 'subscription'}}),
    'invoice customer is a number': (PAYMENT_FAILED, {'object': {'customer': 42, 'subscription': 'sub_odd'}}),
}


@pytest.mark.parametrize('case', MALFORMED)
async def test_a_signed_event_of_the_wrong_shape_is_a_logged_400_not_a_500(
    client: httpx.AsyncClient,
    configured: StripeServer,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    await customer_on_record()
    type_, data = MALFORMED[case]
    event = {**configured.event(type_, {}), 'data': data}
    body, headers = configured.signed_event('', {}, event=event)

    with caplog.at_level(logging.WARNING, logger='api.stripe_webhook'):
        response = await client.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == 400, response.text
    assert response.json()['error'] == 'invalid_webhook'
    assert any(event['id'] in record.getMessage() for record in caplog.records), 'the refusal is logged'
    assert await stored_rows(StripeEvent) == [], 'not recorded as applied, so a corrected resend still counts'
    assert await stored_rows(AuditEvent) == []
    [stored] = await stored_rows(Organization)
    assert (stored.subscription_status, stored.stripe_subscription_id) == ('none', None)


@pytest.mark.parametrize('reference', ['²', '9' * 40, '-1', ' 1'])
async def test_a_checkout_reference_that_is_no_organization_id_matches_nothing(
    client: httpx.AsyncClient, configured: StripeServer, reference: str
) -> None:
    await customer_on_record()
    checkout = {**CHECKOUT, 'customer': None, 'client_reference_id': reference, 'payment_status': 'paid'}
    body, headers = configured.signed_event(COMPLETED, checkout)
    response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    [stored] = await stored_rows(Organization)
    assert (stored.subscription_status, stored.stripe_subscription_id) == ('none', None)


async def test_a_signed_body_nested_too_deep_to_parse_is_a_400(
    client: httpx.AsyncClient, configured: StripeServer
) -> None:
    body = b'{"id": "evt_deep", "type": "customer.created", "data": ' + b'[' * 100_000 + b']' * 100_000 + b'}'
    response = await client.post(WEBHOOK, content=body, headers={'Stripe-Signature': configured.sign(body)})
    assert response.status_code == 400
    assert response.json() == {'error': 'invalid_webhook', 'message': 'The body is not a JSON event.'}


async def test_a_signed_event_with_an_over_long_id_is_a_400(
    client: httpx.AsyncClient, configured: StripeServer
) -> None:
    event = configured.event('customer.created', {'id': 'cus_new'}, event_id='evt_' + 'x' * 300)
    body, headers = configured.signed_event('', {}, event=event)
    response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {'error': 'invalid_webhook', 'message': 'The body is not a Stripe event.'}


# --- unknown paths and wrong methods ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('method', 'path', 'allow'),
    [
        ('POST', '/api/v1/organization', 'GET, OPTIONS'),
        ('DELETE', '/api/v1/organization', 'GET, OPTIONS'),
        ('HEAD', '/api/health', 'GET'),
        ('POST', '/api/health', 'GET'),
        ('GET', WEBHOOK, 'POST'),
        ('PROPFIND', WEBHOOK, 'POST'),
    ],
)
async def test_a_wrong_method_on_an_api_route_is_a_json_405_with_allow(
    client: httpx.AsyncClient, nicegui: NiceGuiStandIn, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers['allow'] == allow
    assert response.headers['content-type'] == 'application/json'
    if method != 'HEAD':
        assert response.json() == {'error': 'method_not_allowed'}
    assert nicegui.requests == [], 'answered by the API, not by the pages'


@pytest.mark.parametrize('method', ['GET', 'POST', 'DELETE', 'PROPFIND'])
@pytest.mark.parametrize(
    'path', ['/api', '/api/', '/api/v2/organization', '/api/health/', '/api/../api/x', '/api/%00', '/api/a%0Ab']
)
async def test_an_unknown_api_path_is_a_json_404(
    client: httpx.AsyncClient, nicegui: NiceGuiStandIn, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 404
    assert response.headers['content-type'] == 'application/json'
    assert response.json() == {'error': 'not_found'}
    assert nicegui.requests == [], 'answered by the API, not by the pages'


async def test_pages_outside_the_api_still_reach_the_pages(client: httpx.AsyncClient, nicegui: NiceGuiStandIn) -> None:
    for path in ('/apiary', '/login', '/'):
        await client.get(path)
    assert nicegui.requests == ['GET /apiary', 'GET /login', 'GET /']


async def test_the_widget_api_and_health_still_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get('/api/health')).json() == {'status': 'ok'}
    assert (await client.get('/api/v1/organization')).status_code == 401
    assert (await client.options('/api/v1/organization')).status_code == 204


# --- the real server ---------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """`main.py` as it is deployed (NiceGUI mounted over the API), with Stripe webhooks configured."""
    workdir = tmp_path_factory.mktemp('served')
    app = AppProcess(REPO_ROOT, workdir, env={'CXT_STRIPE_WEBHOOK_SECRET': 'whsec_test_served'}).start()
    try:
        yield app
    finally:
        app.stop()


def resident_mb(app: AppProcess) -> float:
    assert app._process is not None
    for line in Path(f'/proc/{app._process.pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    raise AssertionError('no VmRSS')


def post_chunked(app: AppProcess, total: int) -> tuple[int, int]:
    """POST `total` bytes of unsigned body, chunked, stopping as soon as the server answers; (status, bytes sent)."""
    with socket.create_connection(('127.0.0.1', app.port), timeout=30) as sock:
        head = f'POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n'
        sock.sendall(head.encode())
        chunk = f'{CHUNK:x}\r\n'.encode() + b'x' * CHUNK + b'\r\n'
        sent = 0
        deadline = time.monotonic() + 60
        while sent < total and time.monotonic() < deadline:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body ended
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        else:
            sock.sendall(b'0\r\n\r\n')
        status_line = sock.makefile('rb').readline()
    return int(status_line.split()[1]), sent


@pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='needs /proc to read the server memory')
def test_the_served_app_refuses_a_200_mb_webhook_body_without_holding_it(served: AppProcess) -> None:
    before = resident_mb(served)
    status, sent = post_chunked(served, HUGE)
    grown = resident_mb(served) - before
    assert status == 413, f'{status} after {sent / LIMIT:.0f} MiB sent; the server grew by {grown:.0f} MB'
    assert sent < 16 * LIMIT, f'the server read {sent / LIMIT:.0f} MiB before answering'
    assert grown < 50, f'the server grew by {grown:.0f} MB'


def test_the_served_app_answers_unknown_api_paths_and_methods_in_json(served: AppProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        unknown = http.get('/api/nothing-here')
        wrong = http.post('/api/health')
        widget = http.put('/api/v1/organization')
        page = http.get('/not-an-api-path')
    assert (unknown.status_code, unknown.json()) == (404, {'error': 'not_found'})
    assert (wrong.status_code, wrong.headers['allow'], wrong.json()) == (405, 'GET', {'error': 'method_not_allowed'})
    assert (widget.status_code, widget.headers['allow']) == (405, 'GET, OPTIONS')
    assert page.headers['content-type'].startswith('text/html'), 'pages outside /api are still NiceGUI pages'


# --- helpers ----------------------------------------------------------------------------------------------------


async def customer_on_record() -> None:
    """An organization that is a Stripe customer (CUSTOMER) without a subscription yet."""

    def make() -> None:
        with write_scope() as session:
            organization = factories.make_organization(session)
            organization.stripe_customer_id = CUSTOMER
            session.add(organization)

    await asyncio.to_thread(make)


async def stored_rows(table: type[Any]) -> list[Any]:
    def read() -> list[Any]:
        with read_scope() as session:
            rows = list(session.exec(select_rows(table)).all())
            session.expunge_all()
            return rows

    return await asyncio.to_thread(read)
