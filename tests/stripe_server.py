"""A small Stripe-compatible HTTP server for tests: what the product calls, in Stripe's shapes, over real HTTP.

    server = StripeServer().start()          # 127.0.0.1, random port; also a context manager
    env: CXT_STRIPE_API_BASE=server.url, CXT_STRIPE_WEBHOOK_SECRET=server.webhook_secret
    server.requests                          # every API request: method, path, params, headers, idempotency_key
    server.customers / .checkout_sessions / .portal_sessions / .subscriptions   # objects by id
    server.fail_next(status=500, times=2)    # the next API requests fail with Stripe's error shape
    server.take_down()                       # stop listening: the port now refuses connections
    server.send_event(app_url, 'customer.subscription.updated', {...})   # a signed webhook, over HTTP
    body, headers = server.signed_event('invoice.payment_failed', {...}) # the same, for an in-process client

API endpoints (form-encoded like Stripe, `Authorization: Bearer <key>` required, `Idempotency-Key` honored):
POST /v1/customers, POST /v1/checkout/sessions, POST /v1/billing_portal/sessions, GET /v1/customers/<id>,
GET /v1/subscriptions/<id>. Errors are `{"error": {"type", "code", "message"}}` with a `Request-Id` header.

Browser pages, so an end-to-end test can walk the whole flow: a session's `url` is `GET /c/pay/<id>` with the
buttons `Subscribe` (creates the subscription, delivers `customer.subscription.created` and
`checkout.session.completed` to `webhook_url`, then redirects to the success URL) and `Cancel`; a portal
session's `url` is `GET /p/session/<id>` with `Cancel subscription` (delivers `customer.subscription.deleted`)
and `Return`.
"""

import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = '2026-10-28.endive'
WEBHOOK_PATH = '/api/stripe/webhook'
MONTH_SECONDS = 30 * 24 * 3600


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]  # lower-case names

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get('idempotency-key')


@dataclass
class _Failure:
    status: int
    error_type: str
    code: str | None
    message: str
    remaining: int | None  # None: until cleared


@dataclass
class _StoredResponse:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]


@dataclass
class StripeServer:
    webhook_secret: str = field(default_factory=lambda: 'whsec_test_' + secrets.token_hex(16))
    api_key: str | None = None  # when set, requests must carry exactly this key
    webhook_url: str | None = None  # where the browser pages deliver events (the app's /api/stripe/webhook)

    def __post_init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.checkout_sessions: dict[str, dict[str, Any]] = {}
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.delivered: list[tuple[dict[str, Any], int]] = []  # (event, app's status) sent by send_event
        self._idempotent: dict[str, _StoredResponse] = {}
        self._failure: _Failure | None = None
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ''

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> 'StripeServer':
        handler = type('Handler', (_Handler,), {'stripe': self})
        self._httpd = ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self._httpd.daemon_threads = True
        self.url = f'http://127.0.0.1:{self._httpd.server_address[1]}'
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={'poll_interval': 0.05}, name='stripe-test-server', daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def take_down(self) -> None:
        """Stop listening but keep `url`: the product now gets "connection refused"."""
        self.stop()

    def __enter__(self) -> 'StripeServer':
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- test controls -------------------------------------------------------------------------------------

    def fail_next(
        self,
        *,
        status: int = 500,
        times: int | None = None,
        error_type: str = 'api_error',
        code: str | None = None,
        message: str = 'An unknown error occurred',
    ) -> None:
        """The next `times` API requests (all, when None, until `recover()`) fail with Stripe's error shape."""
        with self._lock:
            self._failure = _Failure(status, error_type, code, message, times)

    def recover(self) -> None:
        with self._lock:
            self._failure = None

    def api_requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    # --- webhooks ------------------------------------------------------------------------------------------

    def sign(self, payload: bytes, *, timestamp: int | None = None, secret: str | None = None) -> str:
        """A `Stripe-Signature` header: `t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`."""
        stamp = int(time.time()) if timestamp is None else timestamp
        signed = f'{stamp}.'.encode() + payload
        digest = hmac.new((secret or self.webhook_secret).encode(), signed, hashlib.sha256).hexdigest()
        return f't={stamp},v1={digest}'

    def event(self, type_: str, data_object: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            'id': event_id or _new_id('evt'),
            'object': 'event',
            'api_version': API_VERSION,
            'created': int(time.time()),
            'data': {'object': data_object},
            'livemode': False,
            'pending_webhooks': 1,
            'request': {'id': None, 'idempotency_key': None},
            'type': type_,
        }

    def signed_event(
        self,
        type_: str,
        data_object: dict[str, Any],
        *,
        event: dict[str, Any] | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers Stripe would POST for this event."""
        body = json.dumps(event or self.event(type_, data_object), indent=2).encode()
        headers = {
            'Content-Type': 'application/json; charset=utf-8',
            'Stripe-Signature': self.sign(body, timestamp=timestamp, secret=secret),
        }
        return body, headers

    def send_event(
        self,
        app_url: str | None,
        type_: str,
        data_object: dict[str, Any],
        *,
        event: dict[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> int:
        """POST a signed event to the app (its base URL, or the full webhook URL); returns the HTTP status.

        Blocking: use it against an app in another process or thread (a browser suite's server).
        """
        target = (app_url or self.webhook_url or '').rstrip('/')
        if not target:
            raise ValueError('no app URL to deliver the event to')
        if not target.endswith(WEBHOOK_PATH):
            target += WEBHOOK_PATH
        event = event or self.event(type_, data_object)
        body, headers = self.signed_event(type_, data_object, event=event, timestamp=timestamp)
        request = urllib.request.Request(target, data=body, headers=headers, method='POST')
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        self.delivered.append((event, status))
        return status

    # --- Stripe objects ------------------------------------------------------------------------------------

    def complete_checkout(self, session_id: str, *, status: str = 'active') -> tuple[dict[str, Any], dict[str, Any]]:
        """Pay for a Checkout Session: returns (the completed session, the new subscription); delivers nothing."""
        with self._lock:
            checkout = self.checkout_sessions[session_id]
            subscription = self.make_subscription(
                customer=checkout['customer'],
                price=checkout['_price'],
                status=status,
                metadata=checkout.get('_subscription_metadata') or {},
            )
            checkout.update(status='complete', payment_status='paid', subscription=subscription['id'])
            return _public(checkout), subscription

    def make_subscription(
        self,
        *,
        customer: str,
        price: str = 'price_test',
        status: str = 'active',
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = int(time.time())
        subscription_id = _new_id('sub')
        subscription = {
            'id': subscription_id,
            'object': 'subscription',
            'customer': customer,
            'status': status,
            'cancel_at_period_end': False,
            'created': now,
            'start_date': now,
            'livemode': False,
            'metadata': metadata or {},
            'items': {
                'object': 'list',
                'data': [
                    {
                        'id': _new_id('si'),
                        'object': 'subscription_item',
                        'subscription': subscription_id,
                        'quantity': 1,
                        'current_period_start': now,
                        'current_period_end': now + MONTH_SECONDS,
                        'price': {
                            'id': price,
                            'object': 'price',
                            'nickname': None,
                            'lookup_key': None,
                            'recurring': {'interval': 'month', 'interval_count': 1},
                        },
                    }
                ],
                'has_more': False,
                'url': f'/v1/subscription_items?subscription={subscription_id}',
            },
        }
        with self._lock:
            self.subscriptions[subscription_id] = subscription
        return subscription

    def invoice_for(self, subscription: dict[str, Any], *, status: str = 'open') -> dict[str, Any]:
        """An invoice of the subscription, shaped like the current API (`parent.subscription_details`)."""
        return {
            'id': _new_id('in'),
            'object': 'invoice',
            'customer': subscription['customer'],
            'status': status,
            'attempt_count': 1,
            'billing_reason': 'subscription_cycle',
            'parent': {
                'type': 'subscription_details',
                'subscription_details': {'subscription': subscription['id'], 'metadata': {}},
            },
        }

    # --- request handling (called by the handler thread) ---------------------------------------------------

    def _handle_api(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, params, headers))
            failure = self._failure
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failure = None
                return failure.status, _error(failure.error_type, failure.message, failure.code), {}
            authorization = headers.get('authorization', '')
            if not authorization.startswith('Bearer ') or not authorization[7:].strip():
                return 401, _error('invalid_request_error', 'You did not provide an API key.'), {}
            if self.api_key is not None and authorization[7:] != self.api_key:
                return 401, _error('invalid_request_error', 'Invalid API Key provided.', 'api_key_invalid'), {}
            key = headers.get('idempotency-key') if method == 'POST' else None
            if key and key in self._idempotent:
                stored = self._idempotent[key]
                if (stored.method, stored.path, stored.params) != (method, path, params):
                    return (
                        400,
                        _error(
                            'idempotency_error',
                            'Keys for idempotent requests can only be used with the same parameters they were first '
                            'used with.',
                            'idempotency_key_in_use',
                        ),
                        {},
                    )
                return stored.status, stored.body, {'Idempotent-Replayed': 'true'}
            status, body = self._route(method, path, params)
            if key and status < 500:
                self._idempotent[key] = _StoredResponse(method, path, params, status, body)
            return status, body, {}

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == 'POST' and path == '/v1/customers':
            customer = {
                'id': _new_id('cus'),
                'object': 'customer',
                'created': int(time.time()),
                'livemode': False,
                'name': params.get('name'),
                'email': params.get('email'),
                'metadata': params.get('metadata') or {},
            }
            self.customers[customer['id']] = customer
            return 200, customer
        if method == 'POST' and path == '/v1/checkout/sessions':
            return self._create_checkout_session(params)
        if method == 'POST' and path == '/v1/billing_portal/sessions':
            customer = params.get('customer')
            if customer not in self.customers:
                return 400, _missing('customer', customer, param='customer')
            portal = {
                'id': _new_id('bps'),
                'object': 'billing_portal.session',
                'created': int(time.time()),
                'customer': customer,
                'return_url': params.get('return_url'),
                'livemode': False,
            }
            portal['url'] = f'{self.url}/p/session/{portal["id"]}'
            self.portal_sessions[portal['id']] = portal
            return 200, portal
        match = re.fullmatch(r'/v1/(customers|subscriptions)/([A-Za-z0-9_]+)', path)
        if method == 'GET' and match:
            objects = self.customers if match[1] == 'customers' else self.subscriptions
            found = objects.get(match[2])
            return (200, found) if found else (404, _missing(match[1][:-1], match[2], param='id'))
        return 404, _error('invalid_request_error', f'Unrecognized request URL ({method}: {path}).')

    def _create_checkout_session(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if params.get('mode') not in {'payment', 'setup', 'subscription'}:
            return 400, _error('invalid_request_error', 'Missing required param: mode.', 'parameter_missing', 'mode')
        customer = params.get('customer')
        if customer is not None and customer not in self.customers:
            return 400, _missing('customer', customer, param='customer')
        line_items = params.get('line_items') or []
        price = line_items[0].get('price') if line_items and isinstance(line_items[0], dict) else None
        if params['mode'] == 'subscription' and not price:
            return 400, _error(
                'invalid_request_error',
                'You must provide at least one recurring price in `subscription` mode when using prices.',
                'parameter_missing',
                'line_items',
            )
        if not params.get('success_url'):
            return 400, _error(
                'invalid_request_error', 'Missing required param: success_url.', 'parameter_missing', 'success_url'
            )
        checkout = {
            'id': _new_id('cs_test'),
            'object': 'checkout.session',
            'created': int(time.time()),
            'mode': params['mode'],
            'customer': customer,
            'client_reference_id': params.get('client_reference_id'),
            'success_url': params.get('success_url'),
            'cancel_url': params.get('cancel_url'),
            'metadata': params.get('metadata') or {},
            'status': 'open',
            'payment_status': 'unpaid',
            'subscription': None,
            'livemode': False,
            'expires_at': int(time.time()) + 24 * 3600,
            '_price': price,
            '_subscription_metadata': (params.get('subscription_data') or {}).get('metadata'),
        }
        checkout['url'] = f'{self.url}/c/pay/{checkout["id"]}'
        self.checkout_sessions[checkout['id']] = checkout
        return 200, _public(checkout)

    def _deliver(self, type_: str, data_object: dict[str, Any]) -> None:
        if self.webhook_url:
            self.send_event(self.webhook_url, type_, data_object)


class _Handler(BaseHTTPRequestHandler):
    stripe: StripeServer
    protocol_version = 'HTTP/1.1'

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        path = self.path.split('?', 1)[0]
        if path.startswith('/v1/'):
            self._api('GET', path, {})
            return
        if match := re.fullmatch(r'/c/pay/([A-Za-z0-9_]+)', path):
            checkout = self.stripe.checkout_sessions.get(match[1])
            if checkout is None:
                self._html(404, '<h1>Checkout session not found</h1>')
                return
            price = html.escape(str(checkout.get('_price')))
            self._html(
                200,
                (
                    f'<h1>Test Checkout</h1><p>Subscribe to {price}</p>'
                    f'<form method="post" action="/c/pay/{match[1]}/complete"><button type="submit">Subscribe</button>'
                    f'</form><p><a href="{html.escape(checkout.get("cancel_url") or "/")}">Cancel</a></p>'
                ),
            )
            return
        if match := re.fullmatch(r'/p/session/([A-Za-z0-9_]+)', path):
            portal = self.stripe.portal_sessions.get(match[1])
            if portal is None:
                self._html(404, '<h1>Portal session not found</h1>')
                return
            self._html(
                200,
                (
                    f'<h1>Test Customer Portal</h1><p>Customer {html.escape(portal["customer"])}</p>'
                    f'<form method="post" action="/p/session/{match[1]}/cancel">'
                    f'<button type="submit">Cancel subscription</button></form>'
                    f'<p><a href="{html.escape(portal.get("return_url") or "/")}">Return</a></p>'
                ),
            )
            return
        self._html(404, '<h1>Not found</h1>')

    def do_POST(self) -> None:
        length = int(self.headers.get('content-length') or 0)
        raw = self.rfile.read(length) if length else b''
        path = self.path.split('?', 1)[0]
        if path.startswith('/v1/'):
            self._api('POST', path, decode_form(raw.decode()))
            return
        if match := re.fullmatch(r'/c/pay/([A-Za-z0-9_]+)/complete', path):
            if match[1] not in self.stripe.checkout_sessions:
                self._html(404, '<h1>Checkout session not found</h1>')
                return
            checkout, subscription = self.stripe.complete_checkout(match[1])
            self.stripe._deliver('customer.subscription.created', subscription)
            self.stripe._deliver('checkout.session.completed', checkout)
            self._redirect(checkout['success_url'])
            return
        if match := re.fullmatch(r'/p/session/([A-Za-z0-9_]+)/cancel', path):
            portal = self.stripe.portal_sessions.get(match[1])
            if portal is None:
                self._html(404, '<h1>Portal session not found</h1>')
                return
            for subscription in list(self.stripe.subscriptions.values()):
                if subscription['customer'] == portal['customer'] and subscription['status'] != 'canceled':
                    subscription['status'] = 'canceled'
                    self.stripe._deliver('customer.subscription.deleted', subscription)
            self._redirect(portal.get('return_url') or '/')
            return
        self._html(404, '<h1>Not found</h1>')

    def _api(self, method: str, path: str, params: dict[str, Any]) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, body, extra = self.stripe._handle_api(method, path, params, headers)
        self._send(
            status,
            json.dumps(body).encode(),
            'application/json',
            {
                'Request-Id': _new_id('req'),
                'Stripe-Version': API_VERSION,
                **extra,
            },
        )

    def _html(self, status: int, body: str) -> None:
        page = f'<!doctype html><html><head><title>Stripe (test)</title></head><body>{body}</body></html>'
        self._send(status, page.encode(), 'text/html; charset=utf-8', {})

    def _redirect(self, location: str) -> None:
        self._send(303, b'', 'text/plain', {'Location': location})

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding back to nested data: `a[b][0][c]=x` → {'a': {'b': [{'c': 'x'}]}}."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = [key.split('[', 1)[0], *re.findall(r'\[([^\]]*)\]', key)]
        node: Any = result
        for part, following in zip(parts, [*parts[1:], None], strict=True):
            slot: Any = int(part) if isinstance(node, list) else part
            if following is None:
                _assign(node, slot, value)
            else:
                child = _get(node, slot)
                if child is None:
                    child = [] if following.isdigit() else {}
                    _assign(node, slot, child)
                node = child
    return result


def _get(node: Any, slot: Any) -> Any:
    if isinstance(node, list):
        return node[slot] if slot < len(node) else None
    return node.get(slot)


def _assign(node: Any, slot: Any, value: Any) -> None:
    if isinstance(node, list):
        while len(node) <= slot:
            node.append(None)
        node[slot] = value
    else:
        node[slot] = value


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if not key.startswith('_')}


def _error(error_type: str, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {'type': error_type, 'code': code, 'message': message}
    if param:
        error['param'] = param
    return {'error': error}


def _missing(kind: str, value: Any, *, param: str) -> dict[str, Any]:
    return _error('invalid_request_error', f"No such {kind}: '{value}'", 'resource_missing', param)


def _new_id(prefix: str) -> str:
    return f'{prefix}_{secrets.token_hex(12)}'
