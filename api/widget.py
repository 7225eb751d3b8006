"""`GET /api/v1/organization`: what a CX Toolbox widget needs to route its Kustomer calls."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.blocking import run_db
from services.api_keys import VerifiedKey, verify_key
from services.db import read_connection
from services.organizations import kustomer_url, origin_is_known, subdomain_from_origin

router = APIRouter()

_ALLOWED_HEADERS = 'Authorization, X-API-Key, Content-Type'
_INVALID_KEY_BODY = {
    'error': 'invalid_api_key',
    'message': 'The API key is missing, unknown, rotated away or expired.',
}


@router.get('/api/v1/organization')
async def get_organization(request: Request) -> Response:
    key = _presented_key(request)
    origin = request.headers.get('origin')

    def lookup() -> tuple[VerifiedKey | None, bool]:
        with read_connection() as connection:
            verified = verify_key(connection=connection, key=key)
            # A rejected key still gets a CORS grant for known Kustomer origins, so the widget can show why.
            known = verified is None and origin_is_known(connection=connection, origin=origin)
            return verified, known

    verified, known_origin = await run_db(lookup)
    if verified is None:
        headers = {'WWW-Authenticate': 'Bearer', **(_cors_headers(origin) if known_origin else {})}
        return JSONResponse(_INVALID_KEY_BODY, status_code=401, headers=headers)
    body = {
        'organization': {'id': verified.organization_id, 'name': verified.organization_name},
        'kustomer': {
            'subdomain': verified.subdomain,
            'url': kustomer_url(verified.subdomain),
            'sandbox_subdomain': verified.sandbox_subdomain,
            'sandbox_url': kustomer_url(verified.sandbox_subdomain),
        },
    }
    allowed = subdomain_from_origin(origin) in {verified.subdomain, verified.sandbox_subdomain} - {None}
    return JSONResponse(body, headers=_cors_headers(origin) if allowed else {'Vary': 'Origin'})


@router.options('/api/v1/organization')
async def preflight(request: Request) -> Response:
    origin = request.headers.get('origin')

    def known() -> bool:
        with read_connection() as connection:
            return origin_is_known(connection=connection, origin=origin)

    if not await run_db(known):
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
