"""Browser sessions: rows in the database, so every process sees a sign-out, a removal or a reset at once.

A session ends 14 days after sign-in, or after 12 hours without use. Its cookie holds a random token; the row holds
only the token's SHA-256. Signing in over the page socket cannot set a cookie, so a new row first gets a one-time
handoff code (valid for a minute) that the `/session/start` route trades for the token: every sign-in, accepted
invitation, password reset and first-run setup makes a new token, and the browser's previous session ends.
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select, update

from models import BrowserSession, Organization, PasswordResetToken, PendingSignIn, User, UserStatus
from models.base import utcnow
from services import crypto, events
from services.errors import NotFound
from services.identity import handoff, two_factor
from services.permissions import IDLE_TIMEOUT, session_is_live

LIFETIME = timedelta(days=14)

LAST_SEEN_RESOLUTION = timedelta(minutes=1)  # `last_seen_at` is written at most once a minute per session
MAX_USER_AGENT = 300


@dataclass(frozen=True)
class SignedIn:
    """A valid session: whose it is, and when its owner last typed their password in it."""

    user: User
    session_id: int
    password_confirmed_at: datetime | None
    stale: bool  # `last_seen_at` is due for an update (see `touch`)


@dataclass(frozen=True)
class SessionInfo:
    """One of a user's sessions, as the Security page lists them."""

    id: int
    user_agent: str
    ip: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


def cookie_value(token: str) -> str:
    """The cookie for a session token: the token and its HMAC under a key derived from the server secret, so a
    cookie the server did not issue is refused before any database lookup."""
    return crypto.signed(token, 'session-cookie')


def token_from_cookie(value: str | None) -> str | None:
    """The token inside a session cookie, or None when the cookie is missing or its signature is wrong."""
    return crypto.unsigned(value, 'session-cookie')


def start(
    *,
    session: Session,
    user: User,
    ip: str | None,
    user_agent: str | None,
    second_factor: bool = False,
    single_sign_on: bool = False,
) -> str:
    """A new session for `user`, just signed in; returns its handoff code. The sign-in counts as a password entry
    (sensitive actions need none for 10 minutes) when it presented a second factor (`second_factor`: a code, a
    passkey, or an app set up in this sign-in), or when the account has none: a password alone never does for an
    account with a second factor. `single_sign_on`: signed in through the identity provider, which owns the second
    factor (and counts as a password entry, like `Confirm with …`)."""
    assert user.id is not None
    code = secrets.token_urlsafe(32)
    now = utcnow()
    counts = second_factor or single_sign_on or not two_factor.has_second_factor(session=session, user_id=user.id)
    session.add(
        BrowserSession(
            user_id=user.id,
            handoff_hash=crypto.sha256_hex(code),
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
            password_confirmed_at=now if counts else None,
            ip=(ip or '')[:64] or None,
            user_agent=(user_agent or '')[:MAX_USER_AGENT] or None,
            single_sign_on=single_sign_on,
        )
    )
    session.flush()
    return code


def complete_handoff(*, session: Session, code: str, previous_token: str | None) -> str | None:
    """Trade a fresh handoff code for the session's token (the cookie's value); None for an unknown or stale code.

    The browser's previous session, if any, ends: a cookie planted before sign-in never becomes a signed-in one.
    """
    redeemed = handoff.redeem(session=session, model=BrowserSession, code=code)
    if redeemed is None:
        return None
    row, token = redeemed
    if previous_token:
        session.exec(
            delete(BrowserSession).where(
                col(BrowserSession.token_hash) == crypto.sha256_hex(previous_token),
                col(BrowserSession.id) != row.id,
            )
        )
    return token


def signed_in(*, session: Session, token: str | None) -> SignedIn | None:
    """Who the session behind `token` belongs to, or None once it has ended (signed out, expired, idle too long, its
    user removed or their password reset)."""
    if not token or len(token) > 100:
        return None
    row = session.exec(select(BrowserSession).where(BrowserSession.token_hash == crypto.sha256_hex(token))).first()
    now = utcnow()
    if row is None or not session_is_live(row, now=now):
        return None
    user = session.get(User, row.user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        return None
    if not row.single_sign_on and two_factor.setup_required(session=session, user=user):
        return None  # the organization requires a second factor: the next sign-in sets it up first
    assert row.id is not None
    return SignedIn(
        user=user,
        session_id=row.id,
        password_confirmed_at=row.password_confirmed_at,
        stale=now - row.last_seen_at >= LAST_SEEN_RESOLUTION,
    )


def ended_pages(*, session: Session, pages: Mapping[str, tuple[int, str | None]]) -> dict[str, str | None]:
    """Of these open pages (page id: its person's id and session token), those whose session has ended, each with the
    name of the organization its person was removed from (None: signed out, expired, or reset)."""
    ended: dict[str, str | None] = {}
    for page_id, (owner, token) in pages.items():
        if signed_in(session=session, token=token) is not None:
            continue
        user = session.get(User, owner)
        organization = session.get(Organization, user.organization_id) if user is not None else None
        removed = user is not None and user.status == UserStatus.REMOVED and organization is not None
        ended[page_id] = organization.name if removed and organization is not None else None
    return ended


def touch(*, session: Session, session_id: int) -> None:
    """Record that the session was used now (keeps it from idling out)."""
    # One statement: a session ended at the same moment (in another transaction) is simply not touched.
    session.exec(update(BrowserSession).where(col(BrowserSession.id) == session_id).values(last_seen_at=utcnow()))


def password_entered(*, session: Session, session_id: int) -> datetime:
    """The owner typed their password again in this session: sensitive actions are open for another 10 minutes."""
    now = utcnow()
    # One statement: a session ended at the same moment (in another transaction) is found gone, not written.
    entered = session.exec(
        update(BrowserSession).where(col(BrowserSession.id) == session_id).values(password_confirmed_at=now)
    )
    if entered.rowcount != 1:
        raise NotFound('Your session has ended. Sign in again.')
    return now


def end(*, session: Session, token: str | None) -> None:
    """Sign this browser out."""
    if not token:
        return
    token_hash = crypto.sha256_hex(token)
    user_id = session.exec(select(BrowserSession.user_id).where(BrowserSession.token_hash == token_hash)).first()
    session.exec(delete(BrowserSession).where(col(BrowserSession.token_hash) == token_hash))
    if user_id is not None:
        events.publish(session=session, kind=events.EventKind.SESSIONS_ENDED, organization_id=None, user_id=user_id)


def end_one(*, session: Session, user: User, session_id: int) -> bool:
    """End one of the user's own sessions (another browser); False if it had already ended."""
    result = session.exec(
        delete(BrowserSession).where(col(BrowserSession.id) == session_id, col(BrowserSession.user_id) == user.id)
    )
    events.publish(session=session, kind=events.EventKind.SESSIONS_ENDED, organization_id=None, user_id=user.id)
    return result.rowcount == 1


def end_all(*, session: Session, user_id: int, keep_session_id: int | None = None) -> int:
    """End every session of a user (removal, password reset or change, `Sign out everywhere`), except
    `keep_session_id`; returns how many. Whatever else could still become a session ends too: every sign-in waiting
    for its second step, and every unused password reset link issued until now."""
    session.exec(delete(PendingSignIn).where(col(PendingSignIn.user_id) == user_id))
    session.exec(
        update(PasswordResetToken)
        .where(col(PasswordResetToken.user_id) == user_id, col(PasswordResetToken.used_at).is_(None))
        .values(used_at=utcnow())
    )
    statement = delete(BrowserSession).where(col(BrowserSession.user_id) == user_id)
    if keep_session_id is not None:
        statement = statement.where(col(BrowserSession.id) != keep_session_id)
    events.publish(session=session, kind=events.EventKind.SESSIONS_ENDED, organization_id=None, user_id=user_id)
    return session.exec(statement).rowcount


def list_for(*, session: Session, user: User, current_session_id: int | None) -> list[SessionInfo]:
    """The user's own signed-in sessions, most recently used first."""
    now = utcnow()
    rows = session.exec(
        select(BrowserSession)
        .where(
            BrowserSession.user_id == user.id,
            col(BrowserSession.token_hash).is_not(None),
            col(BrowserSession.expires_at) > now,
            col(BrowserSession.last_seen_at) > now - IDLE_TIMEOUT,
        )
        .order_by(col(BrowserSession.last_seen_at).desc(), col(BrowserSession.id).desc())
    ).all()
    return [
        SessionInfo(
            id=row.id or 0,
            user_agent=row.user_agent or 'Unknown browser',
            ip=row.ip or 'unknown address',
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            current=row.id == current_session_id,
        )
        for row in rows
    ]


def prune(*, session: Session) -> int:
    """Delete ended sessions and unused handoff codes; returns how many."""
    now = utcnow()
    return session.exec(
        delete(BrowserSession).where(
            (col(BrowserSession.expires_at) <= now)
            | (col(BrowserSession.last_seen_at) <= now - IDLE_TIMEOUT)
            | (col(BrowserSession.token_hash).is_(None) & (col(BrowserSession.created_at) <= now - handoff.LIFETIME))
        )
    ).rowcount
