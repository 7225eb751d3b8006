"""`GET /api/health`: 200 while the database answers (liveness). `GET /api/ready`: 200 while this process can save."""

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.database_calls import in_thread
from services import metrics, readiness
from services.config import current_settings
from services.db import read_connection

router = APIRouter()
log = logging.getLogger(__name__)


@router.get('/api/health')
async def health() -> JSONResponse:
    def probe() -> None:
        with read_connection() as connection:
            connection.execute(text('SELECT version_num FROM alembic_version')).first()

    try:
        await in_thread(probe)
    except Exception as exc:  # any database failure means "not healthy", never a stack trace to the caller
        log.warning('health check failed: %s', exc)
        return JSONResponse({'status': 'unavailable'}, status_code=503)
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
