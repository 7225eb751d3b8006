"""An admin subscribes through `Manage Billing`, Stripe's webhook confirms it, and the dashboard shows it."""

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from nicegui import ui
from nicegui.functions.navigate import History
from nicegui.testing import User
from sqlmodel import Session, select

import api
from models import AuditEvent, Organization, Role
from tests import factories
from tests.stripe_server import StripeServer
from tests.ui.helpers import PASSWORD, in_database, password_entered_minutes_ago, set_up_organization

PRICE_ID = 'price_test_team_monthly'
PUBLIC_URL = 'http://dashboard.test:8080'


@pytest.fixture
def stripe_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeServer]:
    """A running Stripe-compatible server with the CXT_STRIPE_* variables pointing at it (request before `user`)."""
    with StripeServer() as server:
        monkeypatch.setenv('CXT_STRIPE_SECRET_KEY', 'sk_test_dashboard')
        monkeypatch.setenv('CXT_STRIPE_PRICE_ID', PRICE_ID)
        monkeypatch.setenv('CXT_STRIPE_WEBHOOK_SECRET', server.webhook_secret)
        monkeypatch.setenv('CXT_STRIPE_API_BASE', server.url)
        monkeypatch.setenv('CXT_PUBLIC_URL', PUBLIC_URL)
        yield server


def record_navigation(user: User, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where `ui.navigate.to` sends the browser; Stripe's pages are outside the app, so they are not opened."""
    targets: list[str] = []
    monkeypatch.setattr(user.navigate, 'to', lambda target, new_tab=False: targets.append(target))
    return targets


async def eventually(condition: Callable[[], object], *, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError('condition not met in time')
        await asyncio.sleep(0.05)


async def the_organization() -> Organization:
    organization = await in_database(lambda session: session.get(Organization, 1))
    assert organization is not None
    return organization


def _set_customer(session: Session, customer_id: str) -> None:
    organization = session.get(Organization, 1)
    assert organization is not None
    organization.stripe_customer_id = customer_id
    session.add(organization)


async def deliver(server: StripeServer, type_: str, data_object: dict) -> None:
    body, headers = server.signed_event(type_, data_object)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.create_api_app()), base_url='http://test'
    ) as client:
        response = await client.post('/api/stripe/webhook', content=body, headers=headers)
    assert response.status_code == 200, response.text


async def test_subscribe_then_manage_in_the_portal(
    stripe_server: StripeServer,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_up_organization(user)
    await user.should_see('Subscription: none')
    navigations = record_navigation(user, monkeypatch)

    user.find('Manage Billing').click()
    user.find('Manage Billing').click()
    await eventually(lambda: len(navigations) >= 1)
    await asyncio.sleep(0.2)  # let a second handler, if it got in, finish too

    assert len(stripe_server.customers) == 1
    checkout_urls = {s['url'] for s in stripe_server.checkout_sessions.values()}
    assert set(navigations) <= checkout_urls and navigations[0].startswith(f'{stripe_server.url}/c/pay/cs_test_')
    [request, *_] = stripe_server.api_requests('POST', '/v1/checkout/sessions')
    assert request.params['line_items'] == [{'price': PRICE_ID, 'quantity': '1'}]
    assert request.params['success_url'] == f'{PUBLIC_URL}/?billing=success'
    assert request.params['cancel_url'] == f'{PUBLIC_URL}/?billing=cancelled'
    assert (await the_organization()).stripe_customer_id in stripe_server.customers

    # The customer pays at Stripe; Stripe tells the app and sends the browser back to the success URL.
    session_id = navigations[0].rsplit('/', 1)[1]
    checkout, subscription = stripe_server.complete_checkout(session_id)
    await deliver(stripe_server, 'customer.subscription.created', subscription)
    await deliver(stripe_server, 'checkout.session.completed', checkout)
    await user.open('/?billing=success')
    await user.should_see('Checkout complete')
    await user.should_see('Subscription: active')
    renewal = subscription['items']['data'][0]['current_period_end']
    await user.should_see(f'Renews on {time.strftime("%Y-%m-%d", time.gmtime(renewal))}')

    navigations = record_navigation(user, monkeypatch)
    user.find('Manage Billing').click()
    await eventually(lambda: navigations)
    [portal] = stripe_server.portal_sessions.values()
    assert navigations == [portal['url']]
    assert portal['return_url'] == f'{PUBLIC_URL}/'
    assert len(stripe_server.customers) == 1

    actions = await in_database(lambda session: [event.action for event in session.exec(select(AuditEvent))])
    assert {'billing.checkout_started', 'billing.subscription_changed', 'billing.portal_opened'} <= set(actions)


async def test_status_follows_payment_failure_and_cancellation(stripe_server: StripeServer, user: User) -> None:
    await set_up_organization(user)
    await in_database(lambda session: _set_customer(session, 'cus_acme'))
    stripe_server.customers['cus_acme'] = {'id': 'cus_acme', 'object': 'customer'}
    subscription = stripe_server.make_subscription(customer='cus_acme')
    await deliver(stripe_server, 'customer.subscription.created', subscription)

    await deliver(stripe_server, 'invoice.payment_failed', stripe_server.invoice_for(subscription))
    await user.open('/')
    await user.should_see('Subscription: past_due')

    await deliver(stripe_server, 'customer.subscription.deleted', {**subscription, 'status': 'canceled'})
    await user.open('/')
    await user.should_see('Subscription: canceled')


async def test_status_appears_when_the_webhook_lands_after_the_browser(stripe_server: StripeServer, user: User) -> None:
    await set_up_organization(user)
    await in_database(lambda session: _set_customer(session, 'cus_acme'))
    await user.open('/?billing=success')
    await user.should_see('Subscription: none')

    await deliver(stripe_server, 'customer.subscription.created', stripe_server.make_subscription(customer='cus_acme'))

    await user.should_see('Subscription: active')


async def test_cancelled_checkout_says_so(stripe_server: StripeServer, user: User) -> None:
    await set_up_organization(user)
    await user.open('/?billing=cancelled')
    await user.should_see('Checkout cancelled')
    await user.should_see('Subscription: none')


@pytest.mark.parametrize('outcome', ['success', 'cancelled'])
async def test_the_return_notice_is_said_once_and_the_address_becomes_plain(
    stripe_server: StripeServer, user: User, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    """The browser's address becomes `/` as the notice shows, so a reload does not say it again (the real browser's
    reload is in tests/browser/test_billing.py)."""
    replaced: list[str] = []
    monkeypatch.setattr(History, 'replace', lambda self, url: replaced.append(url))
    await set_up_organization(user)
    assert replaced == []
    await user.open(f'/?billing={outcome}')
    await user.should_see('Checkout complete' if outcome == 'success' else 'Checkout cancelled')
    assert replaced == ['/']


async def test_stripe_error_shows_a_clear_message_and_stores_nothing(
    stripe_server: StripeServer,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_up_organization(user)
    navigations = record_navigation(user, monkeypatch)
    stripe_server.fail_next(status=500)

    user.find('Manage Billing').click()

    await eventually(lambda: user.notify.contains('Stripe reported an error'))
    assert navigations == []
    assert (await the_organization()).stripe_customer_id is None
    await user.should_see('Subscription: none')


async def test_unreachable_stripe_shows_a_clear_message_and_stores_nothing(
    stripe_server: StripeServer,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_up_organization(user)
    navigations = record_navigation(user, monkeypatch)
    stripe_server.take_down()

    user.find('Manage Billing').click()

    await eventually(lambda: user.notify.contains('Could not reach Stripe'))
    assert navigations == []
    assert (await the_organization()).stripe_customer_id is None


async def test_unconfigured_billing_only_says_so(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    await set_up_organization(user)
    navigations = record_navigation(user, monkeypatch)

    user.find('Manage Billing').click()

    await user.should_see('Billing is not configured')
    assert navigations == []
    assert (await the_organization()).stripe_customer_id is None


async def test_members_do_not_see_the_button(stripe_server: StripeServer, user: User) -> None:
    await set_up_organization(user)
    organization = await the_organization()
    member = await in_database(
        lambda session: factories.make_user(session, organization=organization, role=Role.MEMBER)
    )
    member_email = member.email
    user.find('Sign out').click()
    await user.should_see('Welcome back')
    user.find('Email').type(member_email)
    user.find('Password').type(factories.DEFAULT_PASSWORD)
    user.find(kind=ui.button, content='Sign in').click()
    await user.should_see(f'Signed in as {member_email}', retries=50)
    await user.should_see('Subscription: none')
    await user.should_not_see('Manage Billing')


async def test_stale_password_is_asked_for_first(
    stripe_server: StripeServer,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_up_organization(user)
    navigations = record_navigation(user, monkeypatch)
    await password_entered_minutes_ago(11)

    user.find('Manage Billing').click()
    await user.should_see('Confirm your password')
    assert stripe_server.requests == []
    user.find(kind=ui.input, content='Password').type(PASSWORD)
    user.find(kind=ui.button, content='Confirm').click()

    await eventually(lambda: navigations)
    assert navigations[0].startswith(f'{stripe_server.url}/c/pay/')
