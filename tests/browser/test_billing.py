"""`Manage Billing` in a real browser, against the tests' Stripe-compatible server: Checkout, then the Portal."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import STRIPE_PRICE_ID, button, sign_in
from tests.stripe_server import WEBHOOK_PATH, StripeServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope='module')
def app(app: AppProcess, stripe: StripeServer) -> AppProcess:
    """The Stripe test server's pages deliver their webhooks to this module's app."""
    stripe.webhook_url = app.url + WEBHOOK_PATH
    return app


def test_manage_billing_goes_to_checkout_then_the_portal(
    admin_app: AppProcess,
    stripe: StripeServer,
    page: Page,
) -> None:
    sign_in(page)
    expect(page.get_by_text('Subscription: none')).to_be_visible()

    button(page, 'Manage Billing').click()
    page.wait_for_url(re.compile(re.escape(stripe.url) + r'/c/pay/'))
    (checkout,) = stripe.checkout_sessions.values()
    assert page.url == checkout['url']  # exactly the URL Stripe returned for this session
    assert checkout['mode'] == 'subscription'
    expect(page.get_by_text(f'Subscribe to {STRIPE_PRICE_ID}')).to_be_visible()

    page.get_by_role('button', name='Subscribe').click()
    # Back on `/?billing=success` (the notice says so); the address then becomes `/`, so a reload says nothing again.
    notice = page.get_by_text('Checkout complete: your subscription is set up.')
    expect(notice).to_be_visible()
    expect(page).to_have_url(f'{admin_app.url}/')
    expect(page.get_by_text('Subscription: active')).to_be_visible()
    expect(page.get_by_text(re.compile(r'Renews on \d{4}-\d{2}-\d{2}'))).to_be_visible()
    page.reload()
    expect(page.get_by_text('Subscription: active')).to_be_visible()
    expect(page).to_have_url(f'{admin_app.url}/')  # what was reloaded: no `?billing=`, so no notice from the server
    expect(notice).to_have_count(0)

    button(page, 'Manage Billing').click()  # with a subscription: the Customer Portal
    page.wait_for_url(re.compile(re.escape(stripe.url) + r'/p/session/'))
    expect(page.get_by_text('Test Customer Portal')).to_be_visible()
    page.get_by_role('button', name='Cancel subscription').click()
    page.wait_for_url(f'{admin_app.url}/')
    expect(page.get_by_text('Subscription: canceled')).to_be_visible()
