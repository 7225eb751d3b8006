"""`GET /api/v1/organization`: what a CX Toolbox widget needs to route its Kustomer calls."""

import json
import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Receive, Scope, Send

from api.database_calls import key_lookup
from services import metrics
from services.db import hot_read_connection
from services.db_errors import unavailable
from services.keys import key_traffic
from services.keys.api_keys import Miss, VerifiedKey, verify_from_cache, verify_key
from services.team.organizations import kustomer_url, origin_is_known, origin_known_from_cache, subdomain_from_origin

log = logging.getLogger(__name__)
T = TypeVar('T')


class DirectRoute(APIRoute):
    """Matched, included and refused (405) like any APIRoute, but its endpoint is called straight with the Request.

    The widget API is the hot path and its endpoints take only the Request and return a Response, so FastAPI's
    per-request dependency solving and exit stacks buy nothing here.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] == 'http' and scope['method'] in self.methods:
            response = await self.endpoint(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        await super().handle(scope, receive, send)


router = APIRouter(route_class=DirectRoute)

_ALLOWED_HEADERS = 'Authorization, X-API-Key, Content-Type'
_INVALID_KEY_BODY = {
    'error': 'invalid_api_key',
    'message': 'The API key is missing, unknown, rotated away or expired.',
}
_JSON = 'application/json'


def _render(content: object) -> bytes:
    """Exactly what JSONResponse would send."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(',', ':')).encode()


_INVALID_KEY_JSON = _render(_INVALID_KEY_BODY)
_UNAVAILABLE_JSON = _render({'error': 'unavailable'})
RETRY_AFTER = '2'  # seconds: a restart or failover usually takes about that


@lru_cache(maxsize=1024)
def _organization_json(organization_id: int, name: str, subdomain: str | None, sandbox_subdomain: str | None) -> bytes:
    """The 200 body: a pure function of the organization's fields, so it is rendered once per distinct value."""
    return _render(
        {
            'organization': {'id': organization_id, 'name': name},
            'kustomer': {
                'subdomain': subdomain,
                'url': kustomer_url(subdomain),
                'sandbox_subdomain': sandbox_subdomain,
                'sandbox_url': kustomer_url(sandbox_subdomain),
            },
        }
    )


@router.get('/api/v1/organization')
async def get_organization(request: Request) -> Response:
    key = _presented_key(request)
    origin = request.headers.get('origin')
    # On PostgreSQL most requests are answered here, from this process's cache: no thread, no statement.
    verified = verify_from_cache(key=key, count=key_traffic.count)
    known_origin = False
    if isinstance(verified, Miss):

        def lookup() -> tuple[VerifiedKey | None, bool]:
            with hot_read_connection() as connection:
                verified = verify_key(connection=connection, key=key, count=key_traffic.count)  # counted in memory
                # A rejected key still gets a CORS grant for known Kustomer origins, so the widget can show why.
                known = verified is None and origin_is_known(connection=connection, origin=origin)
                return verified, known

        answer = await _from_database(lookup)
        if answer is None:
            return _unavailable()
        verified, known_origin = answer
    elif verified is None:
        cached_origin = origin_known_from_cache(origin)
        known_origin = cached_origin if cached_origin is not None else await _from_database(lambda: _known(origin))
        if known_origin is None:
            return _unavailable()
    if not isinstance(verified, VerifiedKey):
        metrics.count_key_verification(metrics.KeyVerification.INVALID)
        headers = {'WWW-Authenticate': 'Bearer', **(_cors_headers(origin) if known_origin else {})}
        return Response(_INVALID_KEY_JSON, status_code=401, headers=headers, media_type=_JSON)
    metrics.count_key_verification(metrics.KeyVerification.GRACE if verified.in_grace else metrics.KeyVerification.OK)
    body = _organization_json(
        verified.organization_id,
        verified.organization_name,
        verified.subdomain,
        verified.sandbox_subdomain,
    )
    allowed = subdomain_from_origin(origin) in {verified.subdomain, verified.sandbox_subdomain} - {None}
    return Response(body, headers=_cors_headers(origin) if allowed else {'Vary': 'Origin'}, media_type=_JSON)


@router.options('/api/v1/organization')
async def preflight(request: Request) -> Response:
    origin = request.headers.get('origin')
    known = origin_known_from_cache(origin)
    if known is None:
        known = await _from_database(lambda: _known(origin))
        if known is None:
            return _unavailable()
    if not known:
        return Response(status_code=204, headers={'Vary': 'Origin'})
    headers = {
        **_cors_headers(origin),
        'Access-Control-Allow-Methods': 'GET, OPTIONS',
        'Access-Control-Allow-Headers': _ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
    }
    return Response(status_code=204, headers=headers)


def _known(origin: str | None) -> bool:
    with hot_read_connection() as connection:
        return origin_is_known(connection=connection, origin=origin)


class _Outage:
    """The database being away is logged once when it starts and once when it ends, not per request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None
        self.refused = 0

    def started(self, error: BaseException) -> None:
        with self.lock:
            self.refused += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.warning('Widget API: the database is unavailable (%s); answering 503 until it is back', _first_line(error))

    def ended(self) -> None:
        if self.since is None:
            return
        with self.lock:
            since, refused, self.since, self.refused = self.since, self.refused, None, 0
        if since is not None:
            log.info(
                'Widget API: the database is back after %.1f s (%d requests answered 503)',
                time.monotonic() - since,
                refused,
            )


_outage = _Outage()


async def _from_database(function: Callable[[], T]) -> T | None:
    """`function`'s result, run where database work runs; None when the database is unavailable (logged once)."""
    try:
        result = await key_lookup(function)
    except (DBAPIError, PoolTimeout) as error:
        if not unavailable(error):
            raise  # a bug: logged with its trace by the server
        _outage.started(error)
        return None
    _outage.ended()
    return result


def _unavailable() -> Response:
    return Response(_UNAVAILABLE_JSON, status_code=503, headers={'Retry-After': RETRY_AFTER}, media_type=_JSON)


def _first_line(error: BaseException) -> str:
    orig = getattr(error, 'orig', None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get('authorization')
    if authorization:
        scheme, _, value = authorization.partition(' ')
        return value.strip() if scheme.lower() == 'bearer' else None
    return request.headers.get('x-api-key')


def _cors_headers(origin: str | None) -> dict[str, str]:
    return {'Access-Control-Allow-Origin': origin or '', 'Vary': 'Origin'}
