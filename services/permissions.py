"""Role and recent-password checks every service applies itself."""

from datetime import datetime, timedelta

from sqlmodel import Session

from models import Role, User, UserStatus
from models.base import utcnow
from services.errors import PermissionDenied, ReauthenticationRequired

SUDO_WINDOW = timedelta(minutes=10)


def require_admin(*, session: Session, actor: User) -> None:
    """The actor is an active admin as the database says now, in this transaction (not as it said when their page
    loaded: a demotion a moment ago counts)."""
    stored = session.get(User, actor.id, populate_existing=True) if actor.id is not None else None
    if stored is None or stored.role != Role.ADMIN or stored.status != UserStatus.ACTIVE:
        raise PermissionDenied('Only admins can do that.')


def password_is_recent(password_confirmed_at: datetime | None) -> bool:
    """THE recent-password rule: a password entry within the last 10 minutes. A sign-in counts as one only when it
    was complete (`sessions.start`: a password alone never counts for an account with a second factor); the pages
    ask again through the same rule (`ui/actions.py`)."""
    return password_confirmed_at is not None and utcnow() - password_confirmed_at < SUDO_WINDOW


def require_recent_password(password_confirmed_at: datetime | None) -> None:
    """Sensitive actions need a recent password entry (`password_is_recent`)."""
    if not password_is_recent(password_confirmed_at):
        raise ReauthenticationRequired()
