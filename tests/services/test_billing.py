"""Manage Billing against a Stripe-compatible server: Checkout once, the Portal afterwards, failures store nothing.

Webhook events: each one applied once, and news about an older or abandoned subscription never hides the live one.
"""

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from models import AuditEvent, Organization, Role, StripeEvent, SubscriptionStatus, User
from services import billing, config
from services.acting import SCOPES
from services.db import read_scope, write_scope
from services.errors import (
    ExternalServiceError,
    NotConfigured,
    NotFound,
    PermissionDenied,
    ReauthenticationRequired,
)
from tests import factories
from tests.factories import signed_in_actor
from tests.stripe_server import StripeServer

PRICE_ID = 'price_test_team_monthly'
PUBLIC_URL = 'https://dashboard.example.com'
CLIENT_IP = '203.0.113.9'


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


def recently(minutes: float = 1) -> float:
    return minutes


def start_billing(actor: User, password_minutes_ago: float | None) -> billing.BillingRedirect:
    """Manage Billing, the use case the settings tab runs: each database step in its own transaction, Stripe in
    between."""
    me = signed_in_actor(actor, password_minutes_ago=password_minutes_ago, ip=CLIENT_IP)
    return billing.start_billing(scopes=SCOPES, actor=me)


def organization_of(actor: User) -> Organization:
    with read_scope() as session:
        organization = session.get(Organization, actor.organization_id)
        session.expunge_all()  # keep the values read; the read transaction's rollback would expire them
    assert organization is not None
    return organization


def customer_of(actor: User) -> str:
    customer_id = organization_of(actor).stripe_customer_id
    assert customer_id is not None
    return customer_id


def update_organization(actor: User, **fields: Any) -> None:
    with write_scope() as session:
        organization = session.get(Organization, actor.organization_id)
        assert organization is not None
        for name, value in fields.items():
            setattr(organization, name, value)
        session.add(organization)


def audit_events(actor: User) -> list[AuditEvent]:
    with read_scope() as session:
        statement = select(AuditEvent).where(AuditEvent.organization_id == actor.organization_id)
        events = list(session.exec(statement.order_by(col(AuditEvent.id))))
        session.expunge_all()
        return events


def audit_actions(actor: User) -> list[str]:
    return [event.action for event in audit_events(actor)]


def apply_event(server: StripeServer, type_: str, data_object: dict[str, Any]) -> bool:
    with write_scope() as session:
        return billing.handle_event(session=session, event=server.event(type_, data_object))


def test_first_checkout_creates_the_customer_and_a_subscription_session(configured: StripeServer, admin: User) -> None:
    assert billing.is_configured()
    redirect = start_billing(admin, recently())

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
    [event] = audit_events(admin)
    assert (event.action, event.actor_id, event.target, event.ip) == (
        'billing.checkout_started',
        admin.id,
        customer['id'],
        CLIENT_IP,
    )


def test_second_click_reuses_the_customer(configured: StripeServer, admin: User) -> None:
    first = start_billing(admin, recently())
    second = start_billing(admin, recently())

    assert len(configured.customers) == 1
    assert len(configured.api_requests('POST', '/v1/customers')) == 1
    assert first.url != second.url and second.kind == 'checkout'
    assert {s['customer'] for s in configured.checkout_sessions.values()} == set(configured.customers)


def test_two_clicks_at_once_create_one_customer(configured: StripeServer, admin: User) -> None:
    results: list[billing.BillingRedirect] = []
    start = threading.Barrier(2)

    def click() -> None:
        start.wait()
        results.append(start_billing(admin, recently()))

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
    start_billing(admin, recently())
    [checkout_id] = configured.checkout_sessions
    checkout, subscription = configured.complete_checkout(checkout_id)
    assert apply_event(configured, 'checkout.session.completed', checkout)

    redirect = start_billing(admin, recently())

    assert redirect.kind == 'portal'
    [portal] = configured.portal_sessions.values()
    assert redirect.url == portal['url']
    assert portal['customer'] == organization_of(admin).stripe_customer_id
    assert portal['return_url'] == f'{PUBLIC_URL}/'
    assert len(configured.checkout_sessions) == 1
    assert organization_of(admin).stripe_subscription_id == subscription['id']
    assert audit_actions(admin)[-1] == 'billing.portal_opened'


def test_canceled_subscription_goes_back_to_checkout(configured: StripeServer, admin: User) -> None:
    start_billing(admin, recently())
    [checkout_id] = configured.checkout_sessions
    _, subscription = configured.complete_checkout(checkout_id)
    apply_event(configured, 'customer.subscription.created', subscription)
    apply_event(configured, 'customer.subscription.deleted', {**subscription, 'status': 'canceled'})

    assert start_billing(admin, recently()).kind == 'checkout'
    assert len(configured.customers) == 1


def test_unconfigured_billing_says_so_and_stores_nothing(database: None, admin: User) -> None:
    assert not billing.is_configured()
    with pytest.raises(NotConfigured, match='not configured'):
        start_billing(admin, recently())
    assert organization_of(admin).stripe_customer_id is None
    assert audit_actions(admin) == []


def test_missing_price_is_reported(configured: StripeServer, admin: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('CXT_STRIPE_PRICE_ID')
    config.configure(config.load_settings())
    with pytest.raises(NotConfigured, match='CXT_STRIPE_PRICE_ID'):
        start_billing(admin, recently())
    assert configured.requests == []


def test_member_is_refused(configured: StripeServer, admin: User) -> None:
    organization = organization_of(admin)
    with write_scope() as session:
        member = factories.make_user(session, organization=organization, role=Role.MEMBER)
    with pytest.raises(PermissionDenied):
        start_billing(member, recently())
    assert configured.requests == []


def test_stale_password_is_refused(configured: StripeServer, admin: User) -> None:
    with pytest.raises(ReauthenticationRequired):
        start_billing(admin, recently(11))
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
        start_billing(admin, recently())

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
    start_billing(admin, recently())
    configured.fail_next(
        status=400,
        error_type='invalid_request_error',
        code='resource_missing',
        message="No such price: 'price_test_team_monthly'",
        times=1,
    )
    with pytest.raises(ExternalServiceError, match='Stripe refused the request: No such price'):
        start_billing(admin, recently())
    # The customer exists at Stripe once created, so it stays on record (a later click must not make another).
    assert audit_actions(admin) == ['billing.checkout_started']
    assert len(configured.customers) == 1


def test_unreachable_stripe_stores_nothing(configured: StripeServer, admin: User) -> None:
    configured.take_down()
    with pytest.raises(ExternalServiceError, match='Could not reach Stripe'):
        start_billing(admin, recently())
    assert organization_of(admin).stripe_customer_id is None
    assert audit_actions(admin) == []


def test_a_customer_already_on_record_is_kept(
    configured: StripeServer,
    admin: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    me = signed_in_actor(admin, password_minutes_ago=recently())
    with read_scope() as session:
        stale_plan = billing.plan_billing(session=session, actor=me)
    start_billing(admin, recently())  # another click stored a customer while this one was planned
    kept = customer_of(admin)
    # Stripe forgets idempotency keys after a day, so a late retry can come back with a second customer.
    stray = billing.create_customer(replace(stale_plan, customer_idempotency_key='cxt-customer-after-a-day'))

    with caplog.at_level(logging.WARNING, logger='services.billing'), write_scope() as session:
        in_use = billing.store_customer(session=session, organization_id=admin.organization_id, customer_id=stray)
    redirect = billing.open_billing_session(stale_plan, in_use)

    assert (in_use, organization_of(admin).stripe_customer_id) == (kept, kept)
    assert configured.checkout_sessions[redirect.url.rsplit('/', 1)[1]]['customer'] == kept
    [line] = [r.getMessage() for r in caplog.records if r.name == 'services.billing']
    assert kept in line and stray in line  # the operator can find and delete the stray customer


def test_portal_opens_without_a_price_configured(
    configured: StripeServer,
    admin: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start_billing(admin, recently())
    [checkout_id] = configured.checkout_sessions
    _, subscription = configured.complete_checkout(checkout_id)
    apply_event(configured, 'customer.subscription.created', subscription)
    monkeypatch.delenv('CXT_STRIPE_PRICE_ID')
    config.configure(config.load_settings())

    assert start_billing(admin, recently()).kind == 'portal'


def test_live_subscription_without_a_customer_is_explained(configured: StripeServer, admin: User) -> None:
    update_organization(admin, stripe_subscription_id='sub_made_elsewhere', subscription_status='active')

    with pytest.raises(NotFound, match='no Stripe customer'):
        start_billing(admin, recently())

    assert configured.requests == []
    assert audit_actions(admin) == []


def test_a_restricted_key_without_the_permission_points_at_the_setting(configured: StripeServer, admin: User) -> None:
    configured.fail_next(
        status=403,
        error_type='invalid_request_error',
        message='The provided key does not have the required permissions for this endpoint.',
    )
    with pytest.raises(ExternalServiceError, match=r"Stripe refused this server's API key \(check CXT_STRIPE_SECRET"):
        start_billing(admin, recently())
    assert organization_of(admin).stripe_customer_id is None


def test_a_rotated_api_key_is_refused_by_stripe(configured: StripeServer, admin: User) -> None:
    configured.api_key = 'sk_test_rotated_in_the_stripe_dashboard'
    with pytest.raises(ExternalServiceError, match='check CXT_STRIPE_SECRET_KEY'):
        start_billing(admin, recently())
    assert configured.customers == {}


def test_rate_limited_stripe_asks_to_try_again(configured: StripeServer, admin: User) -> None:
    configured.fail_next(status=429, error_type='invalid_request_error', code='rate_limit', message='Too many requests')
    with pytest.raises(ExternalServiceError, match=r'Stripe is busy right now\. Nothing was changed'):
        start_billing(admin, recently())
    assert organization_of(admin).stripe_customer_id is None
    assert audit_actions(admin) == []


class CheckoutWithoutUrl(StripeServer):
    """Answers Checkout like an embedded-mode session: no hosted page to send the browser to."""

    def _create_checkout_session(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, body = super()._create_checkout_session(params)
        return status, {**body, 'url': None}


def test_checkout_without_a_page_is_an_error_not_a_blank_redirect(
    admin: User,
    configured: StripeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with CheckoutWithoutUrl() as server:
        monkeypatch.setenv('CXT_STRIPE_API_BASE', server.url)
        config.configure(config.load_settings())
        with pytest.raises(ExternalServiceError, match='Stripe did not return a Checkout page'):
            start_billing(admin, recently())
    assert audit_actions(admin) == []


def test_subscription_events_keep_status_plan_and_period(configured: StripeServer, admin: User) -> None:
    start_billing(admin, recently())
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


def test_a_status_stripe_never_sends_is_refused_and_nothing_is_kept(configured: StripeServer, admin: User) -> None:
    start_billing(admin, recently())
    [checkout_id] = configured.checkout_sessions
    checkout, subscription = configured.complete_checkout(checkout_id)
    apply_event(configured, 'checkout.session.completed', checkout)

    with pytest.raises(billing.WebhookRejected, match='is not a subscription status'):
        apply_event(configured, 'customer.subscription.updated', {**subscription, 'status': 'sleeping'})
    assert organization_of(admin).subscription_status == SubscriptionStatus.ACTIVE


def test_subscription_created_before_checkout_completed_keeps_its_status(
    configured: StripeServer,
    admin: User,
) -> None:
    start_billing(admin, recently())
    [checkout_id] = configured.checkout_sessions
    checkout, subscription = configured.complete_checkout(checkout_id, status='trialing')
    apply_event(configured, 'customer.subscription.created', subscription)
    apply_event(configured, 'checkout.session.completed', checkout)
    assert organization_of(admin).subscription_status == 'trialing'


def test_replayed_event_is_applied_once(configured: StripeServer, admin: User) -> None:
    start_billing(admin, recently())
    subscription = configured.make_subscription(customer=customer_of(admin), status='past_due')
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


@pytest.fixture
def subscription(configured: StripeServer, admin: User) -> dict[str, Any]:
    """The admin's organization after a paid Checkout: its live subscription, as Stripe sent it."""
    start_billing(admin, recently())
    [checkout_id] = configured.checkout_sessions
    _, subscription = configured.complete_checkout(checkout_id)
    assert apply_event(configured, 'customer.subscription.created', subscription)
    return subscription


def checkout_completed(**fields: Any) -> dict[str, Any]:
    return {
        'id': 'cs_test_elsewhere',
        'object': 'checkout.session',
        'mode': 'subscription',
        'status': 'complete',
        'payment_status': 'paid',
        **fields,
    }


def test_a_one_off_payment_checkout_is_not_a_subscription(
    configured: StripeServer,
    admin: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    update_organization(admin, stripe_customer_id='cus_acme')
    checkout = checkout_completed(mode='payment', customer='cus_acme', subscription=None)

    with caplog.at_level(logging.INFO, logger='services.billing'):
        assert apply_event(configured, 'checkout.session.completed', checkout)

    assert organization_of(admin).subscription_status == 'none'
    assert [r for r in caplog.records if r.name == 'services.billing'] == []  # not reported as unmatched


def test_a_checkout_of_another_stripe_account_changes_nothing(
    configured: StripeServer,
    admin: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    checkout = checkout_completed(customer='cus_not_ours', subscription='sub_not_ours', client_reference_id=None)

    with caplog.at_level(logging.INFO, logger='services.billing'):
        assert apply_event(configured, 'checkout.session.completed', checkout)

    organization = organization_of(admin)
    assert (organization.stripe_customer_id, organization.subscription_status) == (None, 'none')
    assert audit_actions(admin) == []
    [line] = [r.getMessage() for r in caplog.records if r.name == 'services.billing']
    assert 'cs_test_elsewhere matches no organization' in line


def test_a_checkout_matched_by_reference_keeps_the_customer_for_the_portal(
    configured: StripeServer,
    admin: User,
) -> None:
    # No customer on record (its store failed, or Checkout made it): client_reference_id names the organization.
    checkout = checkout_completed(
        customer={'id': 'cus_from_checkout', 'object': 'customer'},
        subscription={'id': 'sub_from_checkout', 'object': 'subscription'},
        client_reference_id=str(admin.organization_id),
    )

    assert apply_event(configured, 'checkout.session.completed', checkout)

    organization = organization_of(admin)
    assert (organization.stripe_customer_id, organization.stripe_subscription_id) == (
        'cus_from_checkout',
        'sub_from_checkout',
    )
    assert organization.subscription_status == 'active'
    me = signed_in_actor(admin, password_minutes_ago=recently())
    with read_scope() as session:
        plan = billing.plan_billing(session=session, actor=me)
    assert (plan.kind, plan.customer_id) == ('portal', 'cus_from_checkout')


def test_a_reference_cannot_claim_an_organization_that_has_another_customer(
    configured: StripeServer,
    admin: User,
) -> None:
    start_billing(admin, recently())
    ours = customer_of(admin)
    checkout = checkout_completed(
        customer='cus_someone_else', subscription='sub_someone_else', client_reference_id=str(admin.organization_id)
    )

    assert apply_event(configured, 'checkout.session.completed', checkout)

    organization = organization_of(admin)
    assert (organization.stripe_customer_id, organization.stripe_subscription_id) == (ours, None)
    assert organization.subscription_status == 'none'


def test_an_unpaid_checkout_is_incomplete_until_stripe_confirms(configured: StripeServer, admin: User) -> None:
    start_billing(admin, recently())
    [checkout_id] = configured.checkout_sessions
    checkout, subscription = configured.complete_checkout(checkout_id)

    apply_event(configured, 'checkout.session.completed', {**checkout, 'payment_status': 'unpaid'})
    assert organization_of(admin).subscription_status == 'incomplete'

    apply_event(configured, 'customer.subscription.updated', subscription)
    assert organization_of(admin).subscription_status == 'active'


@pytest.mark.parametrize('status', ['canceled', 'incomplete', 'incomplete_expired'])
def test_news_about_an_older_subscription_does_not_hide_the_live_one(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
    status: str,
) -> None:
    older = configured.make_subscription(customer=subscription['customer'], status=status)
    kind = 'customer.subscription.deleted' if status == 'canceled' else 'customer.subscription.updated'

    assert apply_event(configured, kind, older)

    organization = organization_of(admin)
    assert (organization.stripe_subscription_id, organization.subscription_status) == (subscription['id'], 'active')


def test_a_second_live_subscription_replaces_the_first_and_is_logged(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    newer = configured.make_subscription(customer=subscription['customer'], status='trialing')

    with caplog.at_level(logging.WARNING, logger='services.billing'):
        apply_event(configured, 'customer.subscription.created', newer)

    organization = organization_of(admin)
    assert (organization.stripe_subscription_id, organization.subscription_status) == (newer['id'], 'trialing')
    [line] = [r.getMessage() for r in caplog.records if r.name == 'services.billing']
    assert newer['id'] in line and subscription['id'] in line


@pytest.mark.parametrize(
    ('nickname', 'lookup_key', 'shown'),
    [('Team (monthly)', 'team_monthly', 'Team (monthly)'), (None, 'team_monthly', 'team_monthly')],
)
def test_the_plan_is_named_by_the_price(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
    nickname: str | None,
    lookup_key: str | None,
    shown: str,
) -> None:
    subscription['items']['data'][0]['price'].update(nickname=nickname, lookup_key=lookup_key)
    apply_event(configured, 'customer.subscription.updated', subscription)
    assert organization_of(admin).subscription_plan == shown


def test_the_period_end_of_the_older_subscription_shape(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
) -> None:
    # Before API version 2025-03-31 the period end sat on the subscription, not on its items.
    period_end = int(datetime(2031, 1, 15, tzinfo=UTC).timestamp())
    for item in subscription['items']['data']:
        del item['current_period_end']
    apply_event(configured, 'customer.subscription.updated', {**subscription, 'current_period_end': period_end})
    assert organization_of(admin).current_period_end == datetime(2031, 1, 15, tzinfo=UTC)


def test_an_update_without_items_keeps_the_plan_and_period(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
) -> None:
    before = organization_of(admin)
    bare = {**subscription, 'status': 'past_due', 'items': {'object': 'list', 'data': []}}

    apply_event(configured, 'customer.subscription.updated', bare)

    after = organization_of(admin)
    assert after.subscription_status == 'past_due'
    assert (after.subscription_plan, after.current_period_end) == (PRICE_ID, before.current_period_end)
    assert before.current_period_end is not None


def test_an_unchanged_subscription_adds_no_activity_entry(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
) -> None:
    changes = audit_actions(admin).count('billing.subscription_changed')
    assert apply_event(configured, 'customer.subscription.updated', subscription)  # a new event, the same state
    assert audit_actions(admin).count('billing.subscription_changed') == changes


def test_a_failed_payment_of_an_unknown_customer_is_acknowledged(configured: StripeServer, admin: User) -> None:
    invoice = configured.invoice_for(configured.make_subscription(customer='cus_nobody'))
    assert apply_event(configured, 'invoice.payment_failed', invoice)
    assert organization_of(admin).subscription_status == 'none'


@pytest.mark.parametrize('about', ['an abandoned checkout', 'a one-off invoice'])
def test_a_failed_invoice_of_another_subscription_leaves_the_live_one(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
    about: str,
) -> None:
    if about == 'an abandoned checkout':
        invoice = configured.invoice_for(configured.make_subscription(customer=subscription['customer']))
    else:
        invoice = {'id': 'in_one_off', 'object': 'invoice', 'customer': subscription['customer'], 'parent': None}

    assert apply_event(configured, 'invoice.payment_failed', invoice)

    assert organization_of(admin).subscription_status == 'active'


def test_a_failed_payment_after_cancellation_keeps_it_canceled(
    configured: StripeServer,
    admin: User,
    subscription: dict[str, Any],
) -> None:
    apply_event(configured, 'customer.subscription.deleted', {**subscription, 'status': 'canceled'})

    apply_event(configured, 'invoice.payment_failed', configured.invoice_for(subscription))

    assert organization_of(admin).subscription_status == 'canceled'
    me = signed_in_actor(admin, password_minutes_ago=recently())
    with read_scope() as session:
        plan = billing.plan_billing(session=session, actor=me)
    assert plan.kind == 'checkout'
