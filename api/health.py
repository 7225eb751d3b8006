"""`GET /api/health`: 200 while the database answers, 503 otherwise."""

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.database_calls import in_thread
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
