"""`POST /api/stripe/webhook`: signed by Stripe or refused, each event applied once."""

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import SQLModel, select

import api
from models import AuditEvent, Organization, StripeEvent
from services import config
from services.db import read_scope, write_scope
from tests import factories
from tests.stripe_server import StripeServer

WEBHOOK = '/api/stripe/webhook'


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
async def client(database: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api.create_api_app())
    async with httpx.AsyncClient(transport=transport, base_url='http://test') as http:
        yield http


@pytest.fixture
def customer_id(database: None) -> str:
    with write_scope() as session:
        organization = factories.make_organization(session)
        organization.stripe_customer_id = 'cus_acme'
        session.add(organization)
    return 'cus_acme'


def organization() -> Organization:
    with read_scope() as session:
        found = session.exec(select(Organization).where(Organization.stripe_customer_id == 'cus_acme')).one()
        session.expunge_all()
        return found


async def stored_organization() -> Organization:
    """The organization as stored now (read off the event loop, like the app does)."""
    return await asyncio.to_thread(organization)


async def stored_rows(table: type[SQLModel]) -> list[Any]:
    def read() -> list[Any]:
        with read_scope() as session:
            rows = list(session.exec(select(table)).all())
            session.expunge_all()
            return rows

    return await asyncio.to_thread(read)


async def deliver(
    client: httpx.AsyncClient,
    server: StripeServer,
    type_: str,
    data_object: dict[str, Any],
    *,
    event: dict[str, Any] | None = None,
    timestamp: int | None = None,
    secret: str | None = None,
) -> httpx.Response:
    body, headers = server.signed_event(type_, data_object, event=event, timestamp=timestamp, secret=secret)
    return await client.post(WEBHOOK, content=body, headers=headers)


async def test_completed_checkout_activates_the_subscription(
    client: httpx.AsyncClient,
    configured: StripeServer,
    customer_id: str,
) -> None:
    org_id = (await stored_organization()).id
    subscription = configured.make_subscription(customer=customer_id)
    checkout = {
        'id': 'cs_test_1',
        'object': 'checkout.session',
        'mode': 'subscription',
        'customer': customer_id,
        'client_reference_id': str(org_id),
        'subscription': subscription['id'],
        'status': 'complete',
        'payment_status': 'paid',
    }

    response = await deliver(client, configured, 'checkout.session.completed', checkout)

    assert response.status_code == 200
    assert response.json() == {'received': True, 'duplicate': False}
    stored = await stored_organization()
    assert (stored.subscription_status, stored.stripe_subscription_id) == ('active', subscription['id'])
    [event] = await stored_rows(AuditEvent)
    assert (event.action, event.actor_email, event.target) == (
        'billing.subscription_changed',
        'Stripe',
        'none → active',
    )


async def test_subscription_lifecycle(client: httpx.AsyncClient, configured: StripeServer, customer_id: str) -> None:
    subscription = configured.make_subscription(customer=customer_id)
    assert (await deliver(client, configured, 'customer.subscription.created', subscription)).status_code == 200
    assert (await stored_organization()).subscription_status == 'active'
    assert (await stored_organization()).current_period_end is not None

    invoice = configured.invoice_for(subscription)
    assert (await deliver(client, configured, 'invoice.payment_failed', invoice)).status_code == 200
    assert (await stored_organization()).subscription_status == 'past_due'

    deleted = {**subscription, 'status': 'canceled'}
    assert (await deliver(client, configured, 'customer.subscription.deleted', deleted)).status_code == 200
    assert (await stored_organization()).subscription_status == 'canceled'


async def test_payment_failed_with_the_older_invoice_shape(
    client: httpx.AsyncClient,
    configured: StripeServer,
    customer_id: str,
) -> None:
    subscription = configured.make_subscription(customer=customer_id)
    await deliver(client, configured, 'customer.subscription.created', subscription)
    invoice = {'id': 'in_old', 'object': 'invoice', 'customer': customer_id, 'subscription': subscription['id']}
    assert (await deliver(client, configured, 'invoice.payment_failed', invoice)).status_code == 200
    assert (await stored_organization()).subscription_status == 'past_due'


async def test_bad_signature_is_refused(client: httpx.AsyncClient, configured: StripeServer, customer_id: str) -> None:
    subscription = configured.make_subscription(customer=customer_id)
    body, headers = configured.signed_event('customer.subscription.created', subscription, secret='whsec_wrong')

    response = await client.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == 400
    assert (await stored_organization()).subscription_status == 'none'
    assert await stored_rows(StripeEvent) == []


async def test_missing_signature_is_refused(client: httpx.AsyncClient, configured: StripeServer) -> None:
    body = json.dumps(configured.event('customer.subscription.created', {'id': 'sub_x'})).encode()
    response = await client.post(WEBHOOK, content=body, headers={'Content-Type': 'application/json'})
    assert response.status_code == 400


async def test_tampered_body_is_refused(client: httpx.AsyncClient, configured: StripeServer, customer_id: str) -> None:
    subscription = configured.make_subscription(customer=customer_id)
    body, headers = configured.signed_event('customer.subscription.created', subscription)
    # Same JSON, different bytes: the signature covers the raw body, not its meaning.
    reformatted = json.dumps(json.loads(body)).encode()
    assert (await client.post(WEBHOOK, content=reformatted, headers=headers)).status_code == 400
    assert (await stored_organization()).subscription_status == 'none'


@pytest.mark.parametrize(
    ('body', 'reason'),
    [
        (b'\xff\xfe{"id": "evt_1"}', 'The body is not a JSON event.'),
        (b'{"id": "evt_1", "type": ', 'The body is not a JSON event.'),
        (b'[{"id": "evt_1", "type": "customer.subscription.created"}]', 'The body is not a Stripe event.'),
        (b'{"object": "event", "type": "customer.subscription.created"}', 'The body is not a Stripe event.'),
    ],
)
async def test_a_signed_body_that_is_not_an_event_is_refused(
    client: httpx.AsyncClient,
    configured: StripeServer,
    body: bytes,
    reason: str,
) -> None:
    headers = {'Content-Type': 'application/json', 'Stripe-Signature': configured.sign(body)}

    response = await client.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == 400  # Stripe shows the reason in its webhook log and retries later
    assert response.json() == {'error': 'invalid_webhook', 'message': reason}
    assert await stored_rows(StripeEvent) == []


async def test_stale_timestamp_is_refused(
    client: httpx.AsyncClient,
    configured: StripeServer,
    customer_id: str,
) -> None:
    subscription = configured.make_subscription(customer=customer_id)
    stale = await deliver(
        client, configured, 'customer.subscription.created', subscription, timestamp=int(time.time()) - 301
    )
    assert stale.status_code == 400
    assert (await stored_organization()).subscription_status == 'none'
    recent = await deliver(
        client, configured, 'customer.subscription.created', subscription, timestamp=int(time.time()) - 240
    )
    assert recent.status_code == 200


async def test_replayed_event_is_a_no_op(client: httpx.AsyncClient, configured: StripeServer, customer_id: str) -> None:
    subscription = configured.make_subscription(customer=customer_id, status='past_due')
    event = configured.event('customer.subscription.updated', subscription)
    first = await deliver(client, configured, '', {}, event=event)
    await deliver(client, configured, 'customer.subscription.updated', {**subscription, 'status': 'active'})

    replay = await deliver(client, configured, '', {}, event=event)

    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.json() == {'received': True, 'duplicate': True}
    assert (await stored_organization()).subscription_status == 'active'


async def test_unconfigured_webhook_secret_refuses_everything(
    client: httpx.AsyncClient,
    stripe_server: StripeServer,
    customer_id: str,
) -> None:
    subscription = stripe_server.make_subscription(customer=customer_id)
    response = await deliver(client, stripe_server, 'customer.subscription.created', subscription)
    assert response.status_code == 400
    assert (await stored_organization()).subscription_status == 'none'


async def test_unhandled_event_type_is_acknowledged(client: httpx.AsyncClient, configured: StripeServer) -> None:
    response = await deliver(client, configured, 'customer.created', {'id': 'cus_new', 'object': 'customer'})
    assert response.status_code == 200


def test_events_over_real_http(configured: StripeServer, customer_id: str) -> None:
    """`send_event` is what a browser suite uses against a running server; check it against one here."""
    server = uvicorn.Server(uvicorn.Config(api.create_api_app(), host='127.0.0.1', port=0, log_level='warning'))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        subscription = configured.make_subscription(customer=customer_id)
        status = configured.send_event(f'http://127.0.0.1:{port}', 'customer.subscription.created', subscription)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
    assert status == 200
    assert organization().subscription_status == 'active'
