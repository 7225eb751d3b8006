"""`GET /api/v1/organization`: what a CX Toolbox widget needs to route its Kustomer calls."""

import json
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from api.database_calls import key_lookup
from services import key_traffic, metrics
from services.api_keys import VerifiedKey, verify_key
from services.db import hot_read_connection
from services.organizations import kustomer_url, origin_is_known, subdomain_from_origin


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

    def lookup() -> tuple[VerifiedKey | None, bool]:
        with hot_read_connection() as connection:
            verified = verify_key(connection=connection, key=key, count=key_traffic.count)  # counted in memory
            # A rejected key still gets a CORS grant for known Kustomer origins, so the widget can show why.
            known = verified is None and origin_is_known(connection=connection, origin=origin)
            return verified, known

    verified, known_origin = await key_lookup(lookup)
    metrics.count_key_verification(_verification(verified))
    if verified is None:
        headers = {'WWW-Authenticate': 'Bearer', **(_cors_headers(origin) if known_origin else {})}
        return Response(_INVALID_KEY_JSON, status_code=401, headers=headers, media_type=_JSON)
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

    def known() -> bool:
        with hot_read_connection() as connection:
            return origin_is_known(connection=connection, origin=origin)

    if not await key_lookup(known):
        return Response(status_code=204, headers={'Vary': 'Origin'})
    headers = {
        **_cors_headers(origin),
        'Access-Control-Allow-Methods': 'GET, OPTIONS',
        'Access-Control-Allow-Headers': _ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
    }
    return Response(status_code=204, headers=headers)


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get('authorization')
    if authorization:
        scheme, _, value = authorization.partition(' ')
        return value.strip() if scheme.lower() == 'bearer' else None
    return request.headers.get('x-api-key')


def _cors_headers(origin: str | None) -> dict[str, str]:
    return {'Access-Control-Allow-Origin': origin or '', 'Vary': 'Origin'}


def _verification(verified: VerifiedKey | None) -> metrics.KeyVerification:
    if verified is None:
        return metrics.KeyVerification.INVALID
    return metrics.KeyVerification.GRACE if verified.in_grace else metrics.KeyVerification.OK
