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


def require_recent_password(password_confirmed_at: datetime | None) -> None:
    """Sensitive actions need a password entry within the last 10 minutes (signing in counts)."""
    if password_confirmed_at is None or utcnow() - password_confirmed_at > SUDO_WINDOW:
        raise ReauthenticationRequired()
