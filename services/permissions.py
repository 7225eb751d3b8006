"""Role and recent-password checks every service applies itself."""

from datetime import datetime, timedelta

from sqlmodel import Session

from models import BrowserSession, Role, User, UserStatus
from models.base import utcnow
from services.acting import Actor
from services.errors import PermissionDenied, ReauthenticationRequired

SUDO_WINDOW = timedelta(minutes=10)
IDLE_TIMEOUT = timedelta(hours=12)  # a browser session unused this long has ended (`services/identity/sessions.py`)


def require_admin(*, session: Session, actor: User) -> None:
    """The actor is an active admin as the database says now, in this transaction (not as it said when their page
    loaded: a demotion a moment ago counts)."""
    stored = session.get(User, actor.id, populate_existing=True) if actor.id is not None else None
    if stored is None or stored.role != Role.ADMIN or stored.status != UserStatus.ACTIVE:
        raise PermissionDenied('Only admins can do that.')


def session_is_live(row: BrowserSession, *, now: datetime) -> bool:
    """THE rule for a browser session still counting: signed in (its handoff traded for a token), within its
    lifetime, and used within the idle timeout."""
    return row.token_hash is not None and row.expires_at > now and now - row.last_seen_at < IDLE_TIMEOUT


def password_is_recent(password_confirmed_at: datetime | None) -> bool:
    """THE recent-password rule: a password entry within the last 10 minutes. A sign-in counts as one only when it
    was complete (`sessions.start`: a password alone never does for an account with a second factor); the pages
    ask again through the same rule (`ui/actions.py`), the services through `require_recent_password`."""
    return password_confirmed_at is not None and utcnow() - password_confirmed_at < SUDO_WINDOW


def require_recent_password(*, session: Session, actor: Actor) -> None:
    """Sensitive actions need a recent password entry (`password_is_recent`) in the actor's own browser session, as
    this transaction reads it: nothing the caller says counts. No session (the command line), another person's, or
    one that has ended: refused."""
    row = session.get(BrowserSession, actor.session_id, populate_existing=True) if actor.session_id else None
    if (
        row is None
        or actor.user.id is None
        or row.user_id != actor.user.id
        or not session_is_live(row, now=utcnow())
        or not password_is_recent(row.password_confirmed_at)
    ):
        raise ReauthenticationRequired()
