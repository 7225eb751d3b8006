"""The team: who belongs to the organization, their roles, and removal."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import true
from sqlmodel import Session, col, func, or_, select

from models import AuditAction, AuditEvent, Role, User, UserStatus
from models.base import utcnow
from services import audit, bus
from services.acting import Actor
from services.errors import NotFound, PermissionDenied, ValidationFailed
from services.identity import credentials, two_factor
from services.permissions import require_admin, require_recent_password
from services.team.organizations import lock_organization

LAST_ADMIN = 'The last admin cannot be removed or demoted. Make someone else an admin first.'
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
SORTABLE = {'name': col(User.name), 'email': col(User.email), 'role': col(User.role), 'joined': col(User.created_at)}


# What counts as signing in, for `Last sign-in` (the audit log already records each one; nothing new is stored).
SIGN_IN_ACTIONS = (
    AuditAction.LOGIN_SUCCEEDED,
    AuditAction.PASSKEY_SIGN_IN_SUCCEEDED,
    AuditAction.ORGANIZATION_CREATED,  # the first admin is signed in by the setup page
    AuditAction.INVITATION_ACCEPTED,  # an invited member is signed in by accepting
)
DORMANT_AFTER = timedelta(days=30)


class MemberFilter(StrEnum):
    """Which teammates the Team Members table shows (admins may narrow it)."""

    EVERYONE = 'everyone'
    WITHOUT_TWO_FACTOR = 'without_two_factor'
    DORMANT = 'dormant'

    @property
    def label(self) -> str:
        return _FILTER_LABELS[self]


_FILTER_LABELS = {
    MemberFilter.EVERYONE: 'Everyone',
    MemberFilter.WITHOUT_TWO_FACTOR: 'Without two-factor',
    MemberFilter.DORMANT: 'No sign-in for 30 days',
}


@dataclass(frozen=True)
class MemberPage:
    """One page of the team as a table shows it, and how many match in all."""

    members: list[User]
    total: int


def page_members(
    *,
    session: Session,
    actor: User,
    search: str = '',
    sort_by: str | None = None,
    descending: bool = False,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    show: MemberFilter = MemberFilter.EVERYONE,
) -> MemberPage:
    """One page of the actor's active teammates (any active member may see the team), filtered by a part of the name
    or email and (admins) by `show`, sorted by `sort_by` (name, email, role or joined; joined by default) and then by
    id."""
    _require_active(session=session, actor=actor)
    conditions: list[Any] = [User.organization_id == actor.organization_id, User.status == UserStatus.ACTIVE]
    if show != MemberFilter.EVERYONE:
        require_admin(session=session, actor=actor)
        conditions.append(_filter_condition(session=session, actor=actor, show=show))
    term = search.strip().lower()[:200]
    if term:
        conditions.append(
            or_(
                func.lower(col(User.name)).contains(term, autoescape=True),
                col(User.email).contains(term, autoescape=True),
            )
        )
    total = session.exec(select(func.count()).select_from(User).where(*conditions)).one()
    order = SORTABLE.get(sort_by or 'joined', SORTABLE['joined'])
    statement = (
        select(User)
        .where(*conditions)
        .order_by(order.desc() if descending else order, col(User.id).desc() if descending else col(User.id))
        .offset(max(offset, 0))
        .limit(min(max(limit, 1), MAX_PAGE_SIZE))
    )
    return MemberPage(members=list(session.exec(statement)), total=total)


def last_sign_ins(*, session: Session, actor: User, user_ids: list[int]) -> dict[int, datetime]:
    """When each of these teammates last signed in (admins only; someone never signed in is missing)."""
    require_admin(session=session, actor=actor)
    if not user_ids:
        return {}
    rows = session.exec(
        select(AuditEvent.actor_id, func.max(AuditEvent.created_at))
        .where(
            AuditEvent.organization_id == actor.organization_id,
            col(AuditEvent.action).in_(SIGN_IN_ACTIONS),
            col(AuditEvent.actor_id).in_(user_ids),
        )
        .group_by(col(AuditEvent.actor_id))
    ).all()
    return {user_id: moment for user_id, moment in rows if user_id is not None}


def _filter_condition(*, session: Session, actor: User, show: MemberFilter) -> Any:
    if show == MemberFilter.WITHOUT_TWO_FACTOR:
        team = list(
            session.exec(
                select(User.id).where(User.organization_id == actor.organization_id, User.status == UserStatus.ACTIVE)
            )
        )
        # The one rule for "has a second factor", asked for the whole team at once.
        protected = two_factor.with_second_factor(session=session, actor=actor, user_ids=[i for i in team if i])
        return col(User.id).not_in(protected) if protected else true()
    recent = select(AuditEvent.actor_id).where(
        AuditEvent.organization_id == actor.organization_id,
        col(AuditEvent.action).in_(SIGN_IN_ACTIONS),
        col(AuditEvent.created_at) > utcnow() - DORMANT_AFTER,
        col(AuditEvent.actor_id).is_not(None),
    )
    return col(User.id).not_in(recent)


def change_role(*, session: Session, actor: Actor, member_id: int, role: str) -> User:
    """Make a member an admin or an admin a member (admins, recent password); the last admin stays an admin."""
    lock_organization(session=session, organization_id=actor.user.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    if role not in set(Role):
        raise ValidationFailed('Choose Admin or Member', field='role')
    role = Role(role)
    member = _member(session=session, actor=actor.user, member_id=member_id)
    if member.role == role:
        return member
    if member.role == Role.ADMIN and _other_admins(session=session, member=member) == 0:
        raise ValidationFailed(LAST_ADMIN)
    previous = member.role
    member.role = role
    session.add(member)
    changed = bus.RoleChanged(
        organization_id=actor.user.organization_id,
        actor_id=actor.user.id,
        actor_email=actor.user.email,
        ip=actor.ip,
        user_id=member_id,
        email=member.email,
        previous=Role(previous),
        new=role,
    )
    audit.record(session=session, event=changed)
    return member


def remove_member(*, session: Session, actor: Actor, member_id: int) -> User:
    """Remove someone from the team (admins, recent password): every credential (passkeys, authenticator app,
    recovery codes, reset links) goes and every session of theirs ends at once."""
    lock_organization(session=session, organization_id=actor.user.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    if member_id == actor.user.id:
        raise PermissionDenied('You cannot remove yourself.')
    member = _member(session=session, actor=actor.user, member_id=member_id)
    if member.role == Role.ADMIN and _other_admins(session=session, member=member) == 0:
        raise ValidationFailed(LAST_ADMIN)
    # The row stays (the audit log points at it); deleting their session rows signs them out in every process.
    member.status = UserStatus.REMOVED
    session.add(member)
    credentials.forget_all(session=session, user_id=member_id)  # passkeys, app, codes, links and every session
    removed = bus.MemberRemoved(
        organization_id=actor.user.organization_id,
        actor_id=actor.user.id,
        actor_email=actor.user.email,
        ip=actor.ip,
        user_id=member_id,
        email=member.email,
        role=Role(member.role),
    )
    audit.record(session=session, event=removed)
    return member


def _require_active(*, session: Session, actor: User) -> None:
    stored = session.get(User, actor.id) if actor.id is not None else None
    if stored is None or stored.status != UserStatus.ACTIVE or stored.organization_id != actor.organization_id:
        raise PermissionDenied('You are no longer on this team.')


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
