"""`GET /api/health`: 200 while the process runs (liveness: it never asks the database, so an outage does not get every
process restarted). `GET /api/ready`: 200 while this process can save (readiness: take it out of rotation)."""

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.database_calls import in_thread
from services import metrics
from services.config import current_settings
from services.operations import readiness

router = APIRouter()
log = logging.getLogger(__name__)


@router.get('/api/health')
async def health() -> JSONResponse:
    """The process runs and its event loop answers; the database is /api/ready's business."""
    return JSONResponse({'status': 'ok'})


@router.get('/api/ready')
async def ready() -> JSONResponse:
    """For load balancers and monitoring: 503 with the reason (`unreachable`, `read-only`, `missing`, `disk`) while
    this process cannot save, so traffic goes elsewhere and someone is told."""
    reason = await current_readiness()
    if reason is None:
        return JSONResponse({'status': 'ready'})
    log.warning('not ready: %s', reason)
    return JSONResponse({'status': 'not_ready', 'reason': reason, 'message': reason.explanation}, status_code=503)


async def current_readiness() -> readiness.NotReady | None:
    """Why this process cannot save now (None: it can); also what `cxt_database_ready` says from now on."""
    data_dir = current_settings().data_dir
    try:
        reason = await in_thread(lambda: readiness.check_readiness(data_dir=data_dir))
    except Exception:  # a failure the check does not know: still an answer a load balancer understands
        log.exception('readiness check failed')
        reason = readiness.NotReady.UNREACHABLE
    metrics.set_database_ready(reason is None)
    return reason
