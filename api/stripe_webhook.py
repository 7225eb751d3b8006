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

# Stripe's events are a few kilobytes; anything past this is not from Stripe and is refused before it is held.
MAX_BODY_BYTES = 1024 * 1024


@router.post('/api/stripe/webhook')
async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await _body_within_limit(request)  # the signature covers these exact bytes: never re-serialize
    if payload is None:
        log.warning('Stripe webhook refused: the body is larger than %d bytes', MAX_BODY_BYTES)
        return JSONResponse(
            {'error': 'payload_too_large', 'message': 'The body is larger than 1 MB.'},
            status_code=413,
            headers={'Connection': 'close'},  # the server stops reading the rest of it
        )
    try:
        event = billing.verify_webhook(payload=payload, signature=request.headers.get('stripe-signature'))
    except billing.WebhookRejected as error:
        log.warning('Stripe webhook refused: %s', error)
        return _refused(error)

    def apply() -> bool:
        with write_scope() as session:
            return billing.handle_event(session=session, event=event)

    try:
        applied = await in_thread(apply)
    except IntegrityError:
        applied = False  # the same event delivered twice at once: the other delivery recorded it
    except billing.WebhookRejected as error:
        # Signed, so from Stripe, but shaped unlike anything it documents: a 400 (not a 500) and nothing kept.
        log.warning('Stripe webhook event %s (%.100s) refused: %s', event['id'], event['type'], error)
        return _refused(error)
    return JSONResponse({'received': True, 'duplicate': not applied})


async def _body_within_limit(request: Request) -> bytes | None:
    """The whole body, or None as soon as it is known to be larger than MAX_BODY_BYTES: from its declared
    Content-Length before reading anything, or while reading a body whose length was not declared (chunked)."""
    try:
        declared = int(request.headers.get('content-length', ''))
    except ValueError:
        declared = None  # not declared (or not a number): the count below decides
    if declared is not None and declared > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _refused(error: billing.WebhookRejected) -> JSONResponse:
    return JSONResponse({'error': 'invalid_webhook', 'message': str(error)}, status_code=400)
