"""The one-time handoff between a page and a cookie, shared by sessions and pending sign-ins.

A page cannot set an HttpOnly cookie itself: it gets a code (only its hash is stored) and sends the browser to a
route that trades the code, once and within a minute, for a fresh token whose hash replaces it; the route puts the
token in the cookie. A code seen twice, or too late, is worth nothing.
"""

import secrets
from datetime import timedelta
from typing import TypeVar

from sqlmodel import Session, select

from models import BrowserSession, PendingSignIn
from models.base import utcnow
from services import crypto

LIFETIME = timedelta(minutes=1)
MAX_CODE_LENGTH = 100

Row = TypeVar('Row', BrowserSession, PendingSignIn)


def redeem(*, session: Session, model: type[Row], code: str) -> tuple[Row, str] | None:
    """The row `code` was issued for and its new token (write); None for an unknown, used or stale code."""
    if not code or len(code) > MAX_CODE_LENGTH:
        return None
    # FOR UPDATE: a second redemption at the same moment waits, then finds the code gone (PostgreSQL re-reads the row).
    row = session.exec(select(model).where(model.handoff_hash == crypto.sha256_hex(code)).with_for_update()).first()
    if row is None:
        return None
    row.handoff_hash = None
    if utcnow() - row.created_at > LIFETIME:
        session.delete(row)
        return None
    token = secrets.token_urlsafe(32)
    row.token_hash = crypto.sha256_hex(token)
    session.add(row)
    return row, token
