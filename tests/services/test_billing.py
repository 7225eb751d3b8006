"""Manage Billing against a Stripe-compatible server: Checkout once, the Portal afterwards, failures store nothing."""

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditEvent, Organization, Role, StripeEvent, User
from models.base import utcnow
from services import billing, config
from services.db import write_scope
from services.errors import ExternalServiceError, NotConfigured, PermissionDenied, ReauthenticationRequired
from tests import factories
from tests.stripe_server import StripeServer

PRICE_ID = 'price_test_team_monthly'
PUBLIC_URL = 'https://dashboard.example.com'


@pytest.fixture
def stripe_server() -> Iterator[StripeServer]:
    with StripeServer() as server:
        yield server


@pytest.fixture
def configured(database: None, stripe_server: StripeServer, monkeypatch: pytest.MonkeyPatch) -> StripeServer:
    monkeypatch.setenv('CXT_STRIPE_SECRET_KEY', 'sk_test_dashboard')
    monkeypatch.setenv('CXT_STRIPE_PRICE_ID', PRICE_ID)
    monkeypatch.setenv('CXT_STRIPE_WEBHOOK_SECRET', stripe_server.webhook_secret)
    monkeypatch.setenv('CXT_STRIPE_API_BASE', stripe_server.url)
    monkeypatch.setenv('CXT_PUBLIC_URL', PUBLIC_URL + '/')
    config.configure(config.load_settings())
    return stripe_server


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        organization = factories.make_organization(session, name='Acme Support')
        return factories.make_user(session, organization=organization, role=Role.ADMIN)


def open_billing(actor: User, *, confirmed_minutes_ago: float = 1) -> billing.BillingRedirect:
    with write_scope() as session:
        return billing.start_billing(
            session=session,
            actor=actor,
            ip='203.0.113.9',
            password_confirmed_at=utcnow() - timedelta(minutes=confirmed_minutes_ago),
        )


def organization_of(actor: User) -> Organization:
    with write_scope() as session:
        return session.get(Organization, actor.organization_id)


def audit_actions(actor: User) -> list[str]:
    with write_scope() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.organization_id == actor.organization_id))
        return [event.action for event in events]


def apply_event(server: StripeServer, type_: str, data_object: dict) -> bool:
    with write_scope() as session:
        return billing.handle_event(session=session, event=server.event(type_, data_object))


def test_first_checkout_creates_the_customer_and_a_subscription_session(configured: StripeServer, admin: User) -> None:
    redirect = open_billing(admin)

    assert redirect.kind == 'checkout'
    [customer] = configured.customers.values()
    assert organization_of(admin).stripe_customer_id == customer['id']
    [create_customer] = configured.api_requests('POST', '/v1/customers')
    assert create_customer.idempotency_key
    assert create_customer.headers['authorization'] == 'Bearer sk_test_dashboard'
    assert create_customer.params['metadata'] == {'organization_id': str(admin.organization_id)}
    [checkout] = configured.checkout_sessions.values()
    assert redirect.url == checkout['url'] and redirect.url.startswith(configured.url)
    [request] = configured.api_requests('POST', '/v1/checkout/sessions')
    assert request.params['mode'] == 'subscription'
    assert request.params['customer'] == customer['id']
    assert request.params['line_items'] == [{'price': PRICE_ID, 'quantity': '1'}]
    assert request.params['success_url'] == f'{PUBLIC_URL}/?billing=success'
    assert request.params['cancel_url'] == f'{PUBLIC_URL}/?billing=cancelled'
    assert request.params['client_reference_id'] == str(admin.organization_id)
    assert audit_actions(admin) == ['billing.checkout_started']


def test_second_click_reuses_the_customer(configured: StripeServer, admin: User) -> None:
    first = open_billing(admin)
    second = open_billing(admin)

    assert len(configured.customers) == 1
    assert len(configured.api_requests('POST', '/v1/customers')) == 1
    assert first.url != second.url and second.kind == 'checkout'
    assert {s['customer'] for s in configured.checkout_sessions.values()} == set(configured.customers)


def test_two_clicks_at_once_create_one_customer(configured: StripeServer, admin: User) -> None:
    results: list[billing.BillingRedirect] = []
    start = threading.Barrier(2)

    def click() -> None:
        start.wait()
        results.append(open_billing(admin))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 2
    assert len(configured.customers) == 1
    keys = {r.idempotency_key for r in configured.api_requests('POST', '/v1/customers')}
    assert len(keys) == 1
    assert organization_of(admin).stripe_customer_id in configured.customers


def test_live_subscription_opens_the_portal(configured: StripeServer, admin: User) -> None:
    open_billing(admin)
    [checkout_id] = configured.checkout_sessions
    checkout, subscription = configured.complete_checkout(checkout_id)
    assert apply_event(configured, 'checkout.session.completed', checkout)

    redirect = open_billing(admin)

    assert redirect.kind == 'portal'
    [portal] = configured.portal_sessions.values()
    assert redirect.url == portal['url']
    assert portal['customer'] == organization_of(admin).stripe_customer_id
    assert portal['return_url'] == f'{PUBLIC_URL}/'
    assert len(configured.checkout_sessions) == 1
    assert organization_of(admin).stripe_subscription_id == subscription['id']
    assert audit_actions(admin)[-1] == 'billing.portal_opened'


def test_canceled_subscription_goes_back_to_checkout(configured: StripeServer, admin: User) -> None:
    open_billing(admin)
    [checkout_id] = configured.checkout_sessions
    _, subscription = configured.complete_checkout(checkout_id)
    apply_event(configured, 'customer.subscription.created', subscription)
    apply_event(configured, 'customer.subscription.deleted', {**subscription, 'status': 'canceled'})

    assert open_billing(admin).kind == 'checkout'
    assert len(configured.customers) == 1


def test_unconfigured_billing_says_so_and_stores_nothing(database: None, admin: User) -> None:
    with pytest.raises(NotConfigured, match='not configured'):
        open_billing(admin)
    assert organization_of(admin).stripe_customer_id is None
    assert audit_actions(admin) == []


def test_missing_price_is_reported(configured: StripeServer, admin: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('CXT_STRIPE_PRICE_ID')
    config.configure(config.load_settings())
    with pytest.raises(NotConfigured, match='CXT_STRIPE_PRICE_ID'):
        open_billing(admin)
    assert configured.requests == []


def test_member_is_refused(configured: StripeServer, admin: User) -> None:
    with write_scope() as session:
        organization = session.get(Organization, admin.organization_id)
        member = factories.make_user(session, organization=organization, role=Role.MEMBER)
    with pytest.raises(PermissionDenied):
        open_billing(member)
    assert configured.requests == []


def test_stale_password_is_refused(configured: StripeServer, admin: User) -> None:
    with pytest.raises(ReauthenticationRequired):
        open_billing(admin, confirmed_minutes_ago=11)
    assert configured.requests == []


def test_stripe_error_stores_nothing_and_logs_the_request_id(
    configured: StripeServer,
    admin: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configured.fail_next(status=500)
    with (
        caplog.at_level(logging.WARNING, logger='services.billing'),
        pytest.raises(ExternalServiceError, match=r'Stripe reported an error\. Nothing was changed') as raised,
    ):
        open_billing(admin)

    attempts = configured.api_requests('POST', '/v1/customers')
    assert len(attempts) == 1 + billing.MAX_NETWORK_RETRIES
    assert len({attempt.idempotency_key for attempt in attempts}) == 1  # a retry is the same request
    assert organization_of(admin).stripe_customer_id is None
    assert audit_actions(admin) == []
    assert configured.customers == {}
    [line] = [r.getMessage() for r in caplog.records if r.name == 'services.billing']
    assert 'request id req_' in line
    assert line.split('request id ')[1].rstrip(')') in str(raised.value)


def test_stripe_refusing_the_checkout_keeps_only_the_customer(configured: StripeServer, admin: User) -> None:
    open_billing(admin)
    configured.fail_next(
        status=400,
        error_type='invalid_request_error',
        code='resource_missing',
        message="No such price: 'price_test_team_monthly'",
        times=1,
    )
    with pytest.raises(ExternalServiceError, match='Stripe refused the request: No such price'):
        open_billing(admin)
    # The customer exists at Stripe once created, so it stays on record (a later click must not make another).
    assert audit_actions(admin) == ['billing.checkout_started']
    assert len(configured.customers) == 1


def test_unreachable_stripe_stores_nothing(configured: StripeServer, admin: User) -> None:
    configured.take_down()
    with pytest.raises(ExternalServiceError, match='Could not reach Stripe'):
        open_billing(admin)
    assert organization_of(admin).stripe_customer_id is None
    assert audit_actions(admin) == []


def test_subscription_events_keep_status_plan_and_period(configured: StripeServer, admin: User) -> None:
    open_billing(admin)
    [checkout_id] = configured.checkout_sessions
    checkout, subscription = configured.complete_checkout(checkout_id)

    assert apply_event(configured, 'checkout.session.completed', checkout)
    organization = organization_of(admin)
    assert (organization.subscription_status, organization.stripe_subscription_id) == ('active', subscription['id'])

    apply_event(configured, 'customer.subscription.updated', subscription)
    organization = organization_of(admin)
    period_end = subscription['items']['data'][0]['current_period_end']
    assert organization.current_period_end is not None
    assert int(organization.current_period_end.timestamp()) == period_end
    assert organization.subscription_plan == PRICE_ID

    apply_event(configured, 'invoice.payment_failed', configured.invoice_for(subscription))
    assert organization_of(admin).subscription_status == 'past_due'

    apply_event(configured, 'customer.subscription.updated', {**subscription, 'status': 'active'})
    assert organization_of(admin).subscription_status == 'active'

    apply_event(configured, 'customer.subscription.deleted', {**subscription, 'status': 'canceled'})
    assert organization_of(admin).subscription_status == 'canceled'

    # An older "updated" arriving after the deletion does not bring the subscription back.
    apply_event(configured, 'customer.subscription.updated', {**subscription, 'status': 'active'})
    assert organization_of(admin).subscription_status == 'canceled'
    assert audit_actions(admin).count('billing.subscription_changed') >= 4


def test_subscription_created_before_checkout_completed_keeps_its_status(
    configured: StripeServer,
    admin: User,
) -> None:
    open_billing(admin)
    [checkout_id] = configured.checkout_sessions
    checkout, subscription = configured.complete_checkout(checkout_id, status='trialing')
    apply_event(configured, 'customer.subscription.created', subscription)
    apply_event(configured, 'checkout.session.completed', checkout)
    assert organization_of(admin).subscription_status == 'trialing'


def test_replayed_event_is_applied_once(configured: StripeServer, admin: User) -> None:
    open_billing(admin)
    customer = organization_of(admin).stripe_customer_id
    subscription = configured.make_subscription(customer=customer, status='past_due')
    event = configured.event('customer.subscription.updated', subscription)
    with write_scope() as session:
        assert billing.handle_event(session=session, event=event)
    apply_event(configured, 'customer.subscription.updated', {**subscription, 'status': 'active'})
    with write_scope() as session:
        assert not billing.handle_event(session=session, event=event)
    assert organization_of(admin).subscription_status == 'active'
    with write_scope() as session:
        assert session.get(StripeEvent, event['id']) is not None


def test_event_for_an_unknown_customer_is_acknowledged(configured: StripeServer, database: None) -> None:
    event = configured.event('customer.subscription.updated', configured.make_subscription(customer='cus_nobody'))
    with write_scope() as session:
        assert billing.handle_event(session=session, event=event)
    with write_scope() as session:
        assert session.exec(select(Organization)).all() == []
        assert session.get(StripeEvent, event['id']) is not None
