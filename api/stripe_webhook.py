"""`POST /api/stripe/webhook`: Stripe events, verified against the raw body, each applied once."""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from api.database_calls import in_thread
from services import billing
from services.db import write_scope

router = APIRouter()
log = logging.getLogger(__name__)


@router.post('/api/stripe/webhook')
async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await request.body()  # the signature covers these exact bytes: never re-serialize before verifying
    try:
        event = billing.verify_webhook(payload=payload, signature=request.headers.get('stripe-signature'))
    except billing.WebhookRejected as error:
        log.warning('Stripe webhook refused: %s', error)
        return JSONResponse({'error': 'invalid_webhook', 'message': str(error)}, status_code=400)

    def apply() -> bool:
        with write_scope() as session:
            return billing.handle_event(session=session, event=event)

    try:
        applied = await in_thread(apply)
    except IntegrityError:
        applied = False  # the same event delivered twice at once: the other delivery recorded it
    return JSONResponse({'received': True, 'duplicate': not applied})
