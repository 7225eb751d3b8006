"""The API on PostgreSQL (`CXT_DATABASE_URL=postgresql+psycopg://…`): database work on worker threads, and the
webhook's answer when Stripe delivers one event twice at the same moment."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

import api
from models import AuditEvent, Organization, StripeEvent
from services import billing, config, db
from services.db import read_scope, write_scope
from services.keys import api_keys
from services.team import organizations
from tests.factories import make_organization, make_user
from tests.postgres_server import PostgresServer
from tests.stripe_server import StripeServer

WEBHOOK = '/api/stripe/webhook'


@pytest.fixture
def stripe_server() -> Iterator[StripeServer]:
    with StripeServer() as server:
        yield server


@pytest.fixture
def pg_database(
    postgres: PostgresServer,
    stripe_server: StripeServer,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    monkeypatch.setenv('CXT_DATABASE_URL', postgres.create_database())
    monkeypatch.setenv('CXT_STRIPE_SECRET_KEY', 'sk_test_dashboard')
    monkeypatch.setenv('CXT_STRIPE_WEBHOOK_SECRET', stripe_server.webhook_secret)
    monkeypatch.setenv('CXT_STRIPE_API_BASE', stripe_server.url)
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    assert engine.dialect.name == 'postgresql'
    yield
    engine.dispose()


@pytest.fixture
async def client(pg_database: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api.create_api_app())
    async with httpx.AsyncClient(transport=transport, base_url='http://test') as http:
        yield http


@pytest.fixture
def organization_id(pg_database: None) -> int:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        organization.stripe_customer_id = 'cus_acme'
        session.add(organization)
        session.flush()
        assert organization.id is not None
        return organization.id


@pytest.fixture
def key(organization_id: int) -> str:
    with write_scope() as session:
        admin = make_user(session, organization=session.get_one(Organization, organization_id))
        organizations.update_subdomains(session=session, actor=admin, subdomain='acme', sandbox_subdomain='')
        return api_keys.generate_key(session=session, actor=admin)


async def test_the_widget_api_answers_from_postgres(client: httpx.AsyncClient, key: str) -> None:
    response = await client.get('/api/v1/organization', headers={'Authorization': f'Bearer {key}'})

    assert response.status_code == 200
    assert response.json()['kustomer']['url'] == 'https://acme.kustomerapp.com'
    assert (await client.get('/api/health')).json() == {'status': 'ok'}


async def test_the_same_event_delivered_twice_at_once_is_applied_once(
    client: httpx.AsyncClient,
    stripe_server: StripeServer,
    organization_id: int,
) -> None:
    subscription = stripe_server.make_subscription(customer='cus_acme')
    body, headers = stripe_server.signed_event('customer.subscription.created', subscription)
    event = billing.verify_webhook(payload=body, signature=headers['Stripe-Signature'])

    # The first delivery has applied the event but not committed yet when the second one arrives.
    first = Session(db.get_engine(), expire_on_commit=False)
    await asyncio.to_thread(lambda: billing.handle_event(session=first, event=event))
    second = asyncio.create_task(client.post(WEBHOOK, content=body, headers=headers))
    await waiting_for_a_lock()
    await asyncio.to_thread(first.commit)
    response = await second
    first.close()

    assert response.status_code == 200  # not a 500: Stripe would keep retrying it
    assert response.json() == {'received': True, 'duplicate': True}
    status, events, changes = await asyncio.to_thread(stored_state, organization_id)
    assert (status, events, changes) == ('active', 1, ['billing.subscription_changed'])


def stored_state(organization_id: int) -> tuple[str, int, list[str]]:
    """The organization's subscription status, the number of recorded events, and its activity entries."""
    with read_scope() as session:
        status = session.get_one(Organization, organization_id).subscription_status
        events = len(session.exec(select(StripeEvent)).all())
        changes = [event.action for event in session.exec(select(AuditEvent))]
    return status, events, changes


async def waiting_for_a_lock(timeout: float = 10) -> None:
    """Until another connection is blocked on a row lock (the second delivery's insert of the same event id)."""

    def blocked() -> int:
        with db.get_engine().connect() as connection:
            statement = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return connection.execute(statement).scalar_one()

    for _ in range(int(timeout / 0.02)):
        if await asyncio.to_thread(blocked):
            return
        await asyncio.sleep(0.02)
    raise AssertionError('the second delivery never waited for the first one')
