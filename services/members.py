"""The team: who belongs to the organization, their roles, and removal."""

from datetime import datetime

from sqlmodel import Session, col, func, select

from models import AuditAction, Role, User, UserStatus
from services import events, sessions
from services.audit import record_event
from services.errors import NotFound, PermissionDenied, ValidationFailed
from services.organizations import lock_organization
from services.permissions import require_admin, require_recent_password

LAST_ADMIN = 'The last admin cannot be removed or demoted. Make someone else an admin first.'


def list_members(*, session: Session, actor: User) -> list[User]:
    """Everyone active in the actor's organization (any role may see the team)."""
    statement = (
        select(User)
        .where(User.organization_id == actor.organization_id, User.status == UserStatus.ACTIVE)
        .order_by(col(User.created_at), col(User.id))
    )
    return list(session.exec(statement))


def change_role(
    *,
    session: Session,
    actor: User,
    member_id: int,
    role: str,
    password_confirmed_at: datetime | None,
    ip: str | None = None,
) -> User:
    """Make a member an admin or an admin a member (admins, recent password); the last admin stays an admin."""
    require_admin(session=session, actor=actor)
    require_recent_password(password_confirmed_at)
    if role not in set(Role):
        raise ValidationFailed('Choose Admin or Member', field='role')
    role = Role(role)
    lock_organization(session=session, organization_id=actor.organization_id)
    member = _member(session=session, actor=actor, member_id=member_id)
    if member.role == role:
        return member
    if member.role == Role.ADMIN and _other_admins(session=session, member=member) == 0:
        raise ValidationFailed(LAST_ADMIN)
    previous = member.role
    member.role = role
    session.add(member)
    events.publish(
        session=session, kind=events.EventKind.ROLE_CHANGED, organization_id=actor.organization_id, user_id=member_id
    )
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.MEMBER_ROLE_CHANGED,
        target=f'{member.email}: {previous} → {role}',
        ip=ip,
    )
    return member


def remove_member(
    *,
    session: Session,
    actor: User,
    member_id: int,
    password_confirmed_at: datetime | None,
    ip: str | None = None,
) -> User:
    """Remove someone from the team (admins, recent password); every session of theirs ends at once."""
    require_admin(session=session, actor=actor)
    require_recent_password(password_confirmed_at)
    if member_id == actor.id:
        raise PermissionDenied('You cannot remove yourself.')
    lock_organization(session=session, organization_id=actor.organization_id)
    member = _member(session=session, actor=actor, member_id=member_id)
    if member.role == Role.ADMIN and _other_admins(session=session, member=member) == 0:
        raise ValidationFailed(LAST_ADMIN)
    # The row stays (the audit log points at it); deleting their session rows signs them out in every process.
    member.status = UserStatus.REMOVED
    session.add(member)
    sessions.end_all(session=session, user_id=member_id)
    events.publish(
        session=session, kind=events.EventKind.MEMBER_REMOVED, organization_id=actor.organization_id, user_id=member_id
    )
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.MEMBER_REMOVED,
        target=member.email,
        ip=ip,
    )
    return member


def _member(*, session: Session, actor: User, member_id: int) -> User:
    member = session.get(User, member_id)
    if member is None or member.organization_id != actor.organization_id or member.status != UserStatus.ACTIVE:
        raise NotFound('That person is not on your team.')
    return member


def _other_admins(*, session: Session, member: User) -> int:
    return session.exec(
        select(func.count())
        .select_from(User)
        .where(
            User.organization_id == member.organization_id,
            User.role == Role.ADMIN,
            User.status == UserStatus.ACTIVE,
            User.id != member.id,
        )
    ).one()
