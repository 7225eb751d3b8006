"""The organization's audit log."""

from sqlmodel import Session, col, select

from models import AuditAction, AuditEvent, User
from services.permissions import require_admin


def record_event(
    *,
    session: Session,
    organization_id: int | None,
    actor: User | None,
    action: AuditAction,
    target: str | None = None,
    ip: str | None = None,
    actor_email: str | None = None,
) -> AuditEvent:
    """Add one event to the log (committed with the caller's transaction)."""
    event = AuditEvent(
        organization_id=organization_id,
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else actor_email,
        action=action,
        target=target,
        ip=ip,
    )
    session.add(event)
    return event


def list_events(*, session: Session, actor: User, limit: int = 200) -> list[AuditEvent]:
    """The actor's organization's events, newest first (admins only)."""
    require_admin(session=session, actor=actor)
    statement = (
        select(AuditEvent)
        .where(AuditEvent.organization_id == actor.organization_id)
        .order_by(col(AuditEvent.created_at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
    )
    return list(session.exec(statement))
