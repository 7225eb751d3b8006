"""`GET /metrics`: this process's metrics in Prometheus' text format, for whoever holds CXT_METRICS_TOKEN.

Not served at all (404, as for any unknown path) while CXT_METRICS_TOKEN is unset; with it set, a request without
`Authorization: Bearer <token>` gets 401. The token is compared in constant time.
"""

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.health import current_readiness
from services import metrics
from services.config import current_settings

router = APIRouter()


@router.get('/metrics', include_in_schema=False)
async def serve_metrics(request: Request) -> Response:
    token = current_settings().metrics_token
    if not token:
        return JSONResponse({'error': 'not_found'}, status_code=404)
    scheme, _, presented = request.headers.get('authorization', '').partition(' ')
    if scheme.lower() != 'bearer' or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return JSONResponse(
            {'error': 'unauthorized'}, status_code=401, headers={'WWW-Authenticate': 'Bearer realm="metrics"'}
        )
    await current_readiness()  # cxt_database_ready as of this scrape
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
