"""Role and recent-password checks every service applies itself."""

from datetime import datetime, timedelta

from models import Role, User, UserStatus
from models.base import utcnow
from services.errors import PermissionDenied, ReauthenticationRequired

SUDO_WINDOW = timedelta(minutes=10)


def require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN or actor.status != UserStatus.ACTIVE:
        raise PermissionDenied('Only admins can do that.')


def require_recent_password(password_confirmed_at: datetime | None) -> None:
    """Sensitive actions need a password entry within the last 10 minutes (signing in counts)."""
    if password_confirmed_at is None or utcnow() - password_confirmed_at > SUDO_WINDOW:
        raise ReauthenticationRequired()
