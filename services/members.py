"""The team: who belongs to the organization."""

from sqlmodel import Session, col, select

from models import User


def list_members(*, session: Session, actor: User) -> list[User]:
    """Everyone in the actor's organization (any role may see the team)."""
    statement = select(User).where(User.organization_id == actor.organization_id).order_by(col(User.created_at))
    return list(session.exec(statement))
