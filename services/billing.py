"""Stripe billing: Checkout for a first subscription, the Customer Portal afterwards, and signed webhooks.

The only module that imports `stripe`, so tests and self-hosters can point it at a Stripe-compatible server
(`CXT_STRIPE_API_BASE`) and the rest of the code never sees the library.

Manage Billing is a series of steps, so no database lock is held while Stripe answers (see `services.db`); the
caller runs them in order, each database step in its own scope and the Stripe calls off the event loop outside any:

    plan = plan_billing(...)                                    # read_scope
    customer_id = plan.customer_id
    if customer_id is None:
        customer_id = store_customer(..., customer_id=create_customer(plan))   # Stripe, then write_scope
    redirect = open_billing_session(plan, customer_id)          # Stripe
    record_billing_opened(..., redirect=redirect, ...)          # write_scope
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlmodel import Session, select

from models import AuditAction, Organization, StripeEvent, SubscriptionStatus, User
from services.acting import Actor, Scopes
from services.audit import record_event
from services.config import Settings, current_settings
from services.errors import ExternalServiceError, NotConfigured, NotFound, ServiceError
from services.permissions import require_admin, require_recent_password

if TYPE_CHECKING:  # imported where it is used: the Stripe library costs ~9 MB in every process that never bills
    import stripe

log = logging.getLogger(__name__)
T = TypeVar('T')

MAX_NETWORK_RETRIES = 1
REQUEST_TIMEOUT_SECONDS = 20
WEBHOOK_TOLERANCE_SECONDS = 300
NOT_CONFIGURED = 'Billing is not configured on this server (set CXT_STRIPE_SECRET_KEY).'
PRICE_NOT_CONFIGURED = 'Billing is not fully configured on this server (set CXT_STRIPE_PRICE_ID).'
NO_CUSTOMER_FOR_PORTAL = (
    'The subscription on record has no Stripe customer, so the billing portal cannot be opened. '
    'Ask the server operator to check the subscription in Stripe.'
)
NO_CHECKOUT_URL = 'Stripe did not return a Checkout page. Nothing was charged; please try again in a moment.'
STRIPE_ACTOR = 'Stripe'
# A subscription in one of these states is over: the next `Manage Billing` starts a new Checkout.
ENDED_STATUSES = frozenset(
    {SubscriptionStatus.NONE, SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED}
)
# A subscription in one of these states never started: news of it must not hide a live one.
_NEVER_STARTED = ENDED_STATUSES | {SubscriptionStatus.INCOMPLETE}
SUBSCRIPTION_EVENTS = frozenset(
    {
        'customer.subscription.created',
        'customer.subscription.updated',
        'customer.subscription.deleted',
    }
)


class WebhookRejected(ServiceError):
    """The webhook is not from Stripe (bad or missing signature, stale timestamp, unreadable body), or its event has a
    field of a type Stripe never sends."""


@dataclass(frozen=True)
class BillingRedirect:
    """Where the browser goes next: Stripe Checkout or the Customer Portal."""

    kind: Literal['checkout', 'portal']
    url: str


def is_configured() -> bool:
    return current_settings().billing_configured


@dataclass(frozen=True)
class BillingPlan:
    """What Manage Billing will do for an organization, read in one transaction by `plan_billing`."""

    kind: Literal['checkout', 'portal']
    organization_id: int
    organization_name: str
    customer_id: str | None  # None: a customer must be created first (checkout only)
    customer_idempotency_key: str


def plan_billing(
    *,
    session: Session,
    actor: Actor,
) -> BillingPlan:
    """Checkout (no live subscription yet) or the Customer Portal for the actor's organization (admins only)."""
    require_admin(session=session, actor=actor.user)
    settings = current_settings()
    if not settings.billing_configured:
        raise NotConfigured(NOT_CONFIGURED)
    require_recent_password(session=session, actor=actor)
    organization = _organization(session=session, organization_id=actor.user.organization_id)
    # Derived from the organization, so two clicks racing each other (or a retry after a lost response) get the
    # same customer from Stripe instead of a second one.
    key = f'cxt-customer-{actor.user.organization_id}-{int(organization.created_at.timestamp() * 1_000_000)}'
    live = bool(organization.stripe_subscription_id) and organization.subscription_status not in ENDED_STATUSES
    if live and not organization.stripe_customer_id:
        raise NotFound(NO_CUSTOMER_FOR_PORTAL)
    if not live:
        _price_id(settings)  # refuse before a customer is created for a Checkout that cannot be opened
    return BillingPlan(
        kind='portal' if live else 'checkout',
        organization_id=actor.user.organization_id,
        organization_name=organization.name,
        customer_id=organization.stripe_customer_id,
        customer_idempotency_key=key,
    )


def create_customer(plan: BillingPlan) -> str:
    """Create the organization's Stripe customer (for a plan without one) and return its id.

    Blocking (network), no session: run it between `plan_billing` and `store_customer`, outside any transaction.
    """
    client = _client(current_settings())
    customer = _call(
        'customers.create',
        lambda: client.v1.customers.create(
            params={'name': plan.organization_name, 'metadata': {'organization_id': str(plan.organization_id)}},
            options={'idempotency_key': plan.customer_idempotency_key},
        ),
    )
    return customer.id


def store_customer(*, session: Session, organization_id: int, customer_id: str) -> str:
    """Keep the new customer on the organization, unless one is already stored; returns the customer id in use."""
    organization = _organization(session=session, organization_id=organization_id)
    if organization.stripe_customer_id is None:
        organization.stripe_customer_id = customer_id
        session.add(organization)
    elif organization.stripe_customer_id != customer_id:
        log.warning(
            'organization %s already has Stripe customer %s; ignoring %s',
            organization_id,
            organization.stripe_customer_id,
            customer_id,
        )
    return organization.stripe_customer_id


def open_billing_session(plan: BillingPlan, customer_id: str) -> BillingRedirect:
    """Open the plan's Checkout or Customer Portal session at Stripe. Blocking (network), no session."""
    settings = current_settings()
    client = _client(settings)
    if plan.kind == 'portal':
        portal = _call(
            'billing_portal.sessions.create',
            lambda: client.v1.billing_portal.sessions.create(
                params={'customer': customer_id, 'return_url': f'{settings.resolved_public_url}/'}
            ),
        )
        return BillingRedirect(kind='portal', url=portal.url)
    price_id = _price_id(settings)
    organization_id = str(plan.organization_id)
    checkout = _call(
        'checkout.sessions.create',
        lambda: client.v1.checkout.sessions.create(
            params={
                'mode': 'subscription',
                'customer': customer_id,
                'client_reference_id': organization_id,
                'line_items': [{'price': price_id, 'quantity': 1}],
                'success_url': f'{settings.resolved_public_url}/?billing=success',
                'cancel_url': f'{settings.resolved_public_url}/?billing=cancelled',
                'metadata': {'organization_id': organization_id},
                'subscription_data': {'metadata': {'organization_id': organization_id}},
            }
        ),
    )
    if not checkout.url:
        log.warning('Stripe checkout session %s came back without a URL', checkout.id)
        raise ExternalServiceError(NO_CHECKOUT_URL)
    return BillingRedirect(kind='checkout', url=checkout.url)


def record_billing_opened(
    *,
    session: Session,
    actor: User,
    redirect: BillingRedirect,
    customer_id: str,
    ip: str | None = None,
) -> None:
    """Note in the audit log that the actor was sent to Checkout or the Customer Portal."""
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.BILLING_PORTAL_OPENED if redirect.kind == 'portal' else AuditAction.BILLING_CHECKOUT_STARTED,
        target=customer_id,
        ip=ip,
    )


def start_billing(*, scopes: Scopes, actor: Actor) -> BillingRedirect:
    """`Manage Billing`: Checkout or the Customer Portal (admins, recent password). Reads the plan, creates the Stripe
    customer once, opens Stripe's page and records it, each database step in its own transaction: none is open while
    Stripe answers."""
    plan = scopes.reading(lambda session: plan_billing(session=session, actor=actor))
    customer_id = plan.customer_id
    if customer_id is None:
        created = create_customer(plan)
        customer_id = scopes.writing(
            lambda session: store_customer(session=session, organization_id=plan.organization_id, customer_id=created)
        )
    redirect = open_billing_session(plan, customer_id)
    in_use = customer_id
    scopes.writing(
        lambda session: record_billing_opened(
            session=session, actor=actor.user, redirect=redirect, customer_id=in_use, ip=actor.ip
        )
    )
    return redirect


def _price_id(settings: Settings) -> str:
    if not settings.stripe_price_id:
        raise NotConfigured(PRICE_NOT_CONFIGURED)
    return settings.stripe_price_id


def _client(settings: Settings) -> 'stripe.StripeClient':
    import stripe

    base_addresses: Any = {'api': settings.stripe_api_base.rstrip('/')} if settings.stripe_api_base else None
    return stripe.StripeClient(
        settings.stripe_secret_key or '',
        base_addresses=base_addresses,
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_SECONDS),
    )


def _call(operation: str, request: Callable[[], T]) -> T:
    """Run one Stripe request, turning its failures into messages an admin can act on (and a log line)."""
    import stripe

    try:
        return request()
    except stripe.StripeError as error:
        log.warning(
            'Stripe %s failed: %s %s (HTTP %s, request id %s)',
            operation,
            type(error).__name__,
            error.user_message,
            error.http_status,
            error.request_id,
        )
        raise ExternalServiceError(_message_for(error)) from None


def _message_for(error: 'stripe.StripeError') -> str:
    import stripe

    reference = f' (Stripe request {error.request_id})' if error.request_id else ''
    if isinstance(error, stripe.APIConnectionError):
        return 'Could not reach Stripe. Nothing was changed; please try again in a moment.'
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return f"Stripe refused this server's API key (check CXT_STRIPE_SECRET_KEY){reference}."
    if isinstance(error, stripe.InvalidRequestError):
        return f'Stripe refused the request: {error.user_message}{reference}'
    if isinstance(error, stripe.RateLimitError):
        return f'Stripe is busy right now. Nothing was changed; please try again in a moment{reference}.'
    return f'Stripe reported an error. Nothing was changed; please try again in a moment{reference}.'


def _organization(*, session: Session, organization_id: int) -> Organization:
    # The organization's row lock (as `team.organizations.lock_organization`): one customer kept, also from two
    # clicks at once.
    organization = session.get(
        Organization, organization_id, populate_existing=True, with_for_update={'key_share': True}
    )
    if organization is None:
        raise NotFound('Organization not found.')
    return organization


# --- webhooks -------------------------------------------------------------------------------------------------

MAX_ID_LENGTH = 255  # the longest id the tables keep (Stripe's own are far shorter)
_LAST_TIMESTAMP = datetime(9999, 12, 31, tzinfo=UTC).timestamp()  # the last moment a datetime can hold


def verify_webhook(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in a webhook body whose `Stripe-Signature` matches the raw bytes and is at most 5 minutes old."""
    secret = current_settings().stripe_webhook_secret
    if not secret:
        log.warning('Stripe webhook refused: CXT_STRIPE_WEBHOOK_SECRET is not set')
        raise WebhookRejected('Webhooks are not configured on this server.')
    import stripe

    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, WEBHOOK_TOLERANCE_SECONDS)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as error:
        raise WebhookRejected(f'Invalid signature: {error.user_message}') from None
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deeper than json can parse
        raise WebhookRejected('The body is not a JSON event.') from None
    if not isinstance(event, dict) or not _is_id(event.get('id')) or not isinstance(event.get('type'), str):
        raise WebhookRejected('The body is not a Stripe event.')
    return event


def handle_event(*, session: Session, event: dict[str, Any]) -> bool:
    """Apply one verified event; each event id is applied once (False for a replay).

    A field of a type Stripe never sends raises `WebhookRejected`, so nothing of the event is kept (the caller's
    transaction rolls back) and a corrected resend is applied normally.
    """
    if session.get(StripeEvent, event['id']) is not None:
        return False
    session.add(StripeEvent(id=event['id'], type=event['type'][:100]))
    session.flush()
    data = _object(_object(event.get('data'), 'data').get('object'), 'data.object')
    kind = event['type']
    if kind == 'checkout.session.completed':
        _checkout_completed(session=session, checkout=data)
    elif kind in SUBSCRIPTION_EVENTS:
        _subscription_changed(session=session, subscription=data, deleted=kind.endswith('.deleted'))
    elif kind == 'invoice.payment_failed':
        _payment_failed(session=session, invoice=data)
    return True


def _checkout_completed(*, session: Session, checkout: dict[str, Any]) -> None:
    if _text(checkout.get('mode'), 'mode') != 'subscription':
        return
    customer_id = _id(checkout.get('customer'), 'customer')
    organization = _organization_for(
        session=session,
        customer_id=customer_id,
        reference=_text(checkout.get('client_reference_id'), 'client_reference_id'),
    )
    subscription_id = _id(checkout.get('subscription'), 'subscription')
    if organization is None or subscription_id is None:
        log.info('Stripe checkout %s matches no organization', checkout.get('id'))
        return
    if organization.stripe_customer_id is None:
        organization.stripe_customer_id = customer_id
    if organization.stripe_subscription_id == subscription_id:
        return  # a customer.subscription.* event already told us this subscription's state
    paid = _text(checkout.get('payment_status'), 'payment_status') in {'paid', 'no_payment_required'}
    _apply(
        session=session,
        organization=organization,
        subscription_id=subscription_id,
        status=SubscriptionStatus.ACTIVE if paid else SubscriptionStatus.INCOMPLETE,
        plan=organization.subscription_plan,
        period_end=organization.current_period_end,
    )


def _subscription_changed(*, session: Session, subscription: dict[str, Any], deleted: bool) -> None:
    metadata = _object(subscription.get('metadata'), 'metadata')
    organization = _organization_for(
        session=session,
        customer_id=_id(subscription.get('customer'), 'customer'),
        reference=_text(metadata.get('organization_id'), 'metadata.organization_id'),
    )
    subscription_id = _id(subscription.get('id'), 'id')
    if organization is None or subscription_id is None:
        log.info('Stripe subscription %s matches no organization', subscription_id)
        return
    status = SubscriptionStatus.CANCELED if deleted else _status(subscription.get('status'))
    if _outdated(organization, subscription_id=subscription_id, status=status):
        return
    items = [
        _object(item, 'items.data[]')
        for item in _list(_object(subscription.get('items'), 'items').get('data'), 'items.data')
    ]
    _apply(
        session=session,
        organization=organization,
        subscription_id=subscription_id,
        status=status,
        plan=_plan(items) or organization.subscription_plan,
        period_end=_period_end(subscription, items) or organization.current_period_end,
    )


def _outdated(organization: Organization, *, subscription_id: str, status: SubscriptionStatus) -> bool:
    """Whether news about `subscription_id` must not change what the organization has on record."""
    current = organization.stripe_subscription_id
    if current and current != subscription_id and organization.subscription_status not in ENDED_STATUSES:
        if status in _NEVER_STARTED:
            return True  # news about an older or abandoned subscription must not hide the live one
        log.warning('organization %s: Stripe subscription %s replaces %s', organization.id, subscription_id, current)
        return False
    # A canceled subscription never comes back: this is an older event arriving late.
    canceled = SubscriptionStatus.CANCELED
    return current == subscription_id and organization.subscription_status == canceled and status != canceled


def _plan(items: list[dict[str, Any]]) -> str | None:
    """The plan's name: the first item's price nickname, lookup key or id."""
    price = _object(items[0].get('price'), 'items.data[].price') if items else {}
    return (
        _text(price.get('nickname'), 'price.nickname')
        or _text(price.get('lookup_key'), 'price.lookup_key')
        or _id(price.get('id'), 'price.id')
    )


def _period_end(subscription: dict[str, Any], items: list[dict[str, Any]]) -> datetime | None:
    """When the paid period ends: the subscription's own field (older API versions) or its items' latest."""
    item_ends = [_timestamp(item.get('current_period_end'), 'items.data[].current_period_end') for item in items]
    return _timestamp(subscription.get('current_period_end'), 'current_period_end') or max(
        (end for end in item_ends if end is not None), default=None
    )


def _payment_failed(*, session: Session, invoice: dict[str, Any]) -> None:
    customer_id = _id(invoice.get('customer'), 'customer')
    organization = _organization_for(session=session, customer_id=customer_id, reference=None)
    if organization is None:
        log.info('Stripe invoice %s matches no organization', invoice.get('id'))
        return
    parent = _object(
        _object(invoice.get('parent'), 'parent').get('subscription_details'), 'parent.subscription_details'
    )
    subscription_id = _id(invoice.get('subscription'), 'subscription') or _id(
        parent.get('subscription'), 'parent.subscription_details.subscription'
    )
    if subscription_id is None or subscription_id != organization.stripe_subscription_id:
        return  # not about the subscription on record (a one-off invoice, or an abandoned Checkout)
    if organization.subscription_status == SubscriptionStatus.CANCELED:
        return
    _apply(
        session=session,
        organization=organization,
        subscription_id=subscription_id,
        status=SubscriptionStatus.PAST_DUE,
        plan=organization.subscription_plan,
        period_end=organization.current_period_end,
    )


def _apply(
    *,
    session: Session,
    organization: Organization,
    subscription_id: str,
    status: SubscriptionStatus,
    plan: str | None,
    period_end: datetime | None,
) -> None:
    before = (organization.subscription_status, organization.subscription_plan, organization.current_period_end)
    organization.stripe_subscription_id = subscription_id
    organization.subscription_status = status
    organization.subscription_plan = plan[:255] if plan else None
    organization.current_period_end = period_end
    session.add(organization)
    if before != (organization.subscription_status, organization.subscription_plan, period_end):
        record_event(
            session=session,
            organization_id=organization.id,
            actor=None,
            actor_email=STRIPE_ACTOR,
            action=AuditAction.BILLING_SUBSCRIPTION_CHANGED,
            target=f'{before[0]} → {organization.subscription_status}',
        )


def _organization_for(*, session: Session, customer_id: str | None, reference: str | None) -> Organization | None:
    # Row locks: events about one organization are applied one after another (each reads the state the last left).
    if customer_id:
        found = session.exec(
            select(Organization)
            .where(Organization.stripe_customer_id == customer_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).first()
        if found is not None:
            return found
    # Our own client_reference_id / metadata: an organization id, at most 18 digits so it fits a 64-bit row id.
    if reference is not None and reference.isascii() and reference.isdigit() and len(reference) <= 18:
        found = session.get(Organization, int(reference), populate_existing=True, with_for_update={'key_share': True})
        # Only an organization that has no customer yet may be matched by reference alone.
        if found is not None and found.stripe_customer_id in {None, customer_id}:
            return found
    return None


# Reading an event's fields: Stripe documents each one's type; anything else is refused, never guessed at.


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _id(value: Any, name: str) -> str | None:
    """An id from a field that is either the id itself or an expanded object (None when absent)."""
    if isinstance(value, dict):
        value = value.get('id')
    if value is None or value == '':
        return None
    if not _is_id(value):
        raise WebhookRejected(f'The event field {name} is not a Stripe id.')
    return value


def _object(value: Any, name: str) -> dict[str, Any]:
    """A JSON object field; absent (or null) reads as empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebhookRejected(f'The event field {name} is not an object.')
    return value


def _list(value: Any, name: str) -> list[Any]:
    """A JSON array field; absent (or null) reads as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookRejected(f'The event field {name} is not a list.')
    return value


def _text(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise WebhookRejected(f'The event field {name} is not a string.')


def _status(value: Any) -> SubscriptionStatus:
    """A subscription's status (absent reads as NONE); a word Stripe never sends is refused."""
    text = _text(value, 'status')
    if not text:
        return SubscriptionStatus.NONE
    try:
        return SubscriptionStatus(text)
    except ValueError:
        raise WebhookRejected('The event field status is not a subscription status.') from None


def _timestamp(value: Any, name: str) -> datetime | None:
    """A Unix timestamp (seconds); absent, null or 0 reads as None."""
    if value is None or (value == 0 and not isinstance(value, bool)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= _LAST_TIMESTAMP:
        raise WebhookRejected(f'The event field {name} is not a timestamp.')
    return datetime.fromtimestamp(value, UTC)
