"""Invitations: invite by email, resend, revoke, copy the link, accept."""

import base64
import hashlib
import hmac
import html
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, func, or_, select

from models import (
    AuditAction,
    AuditEvent,
    DeliveryStatus,
    Invitation,
    LinkState,
    Organization,
    ProcessHeartbeat,
    Role,
    User,
    UserStatus,
)
from models.base import stored_id, utcnow
from services import audit, bus, crypto, events, mail
from services.acting import Scopes
from services.audit import record_event
from services.config import current_settings, resolve_secret_key
from services.db import lock_account
from services.errors import NotFound, ServiceError, ValidationFailed
from services.identity import auth, credentials
from services.identity.next_step import Next, after_password
from services.permissions import require_admin

LIFETIME = timedelta(days=7)
# An expired invitation stays in the admin's list this long after it expired, with `Resend`.
KEPT_AFTER_EXPIRY = timedelta(days=30)
DAILY_LIMIT = 50
STATE_MESSAGES = {
    LinkState.UNKNOWN: 'This invitation link is not valid',
    LinkState.REVOKED: 'This invitation has been revoked',
    LinkState.EXPIRED: 'This invitation has expired',
    LinkState.USED: 'This invitation has already been used',
}


@dataclass(frozen=True)
class IssuedInvitation:
    """An invitation just stored (or renewed) with its link, ready to be emailed."""

    invitation_id: int
    token_hash: str
    email: str
    role: Role
    link: str
    organization_name: str
    inviter_name: str
    inviter_email: str
    expires_at: datetime
    resent: bool
    delivery_status: DeliveryStatus


@dataclass(frozen=True)
class PendingInvitation:
    id: int
    email: str
    role: Role
    invited_by: str
    expires_at: datetime
    delivery_status: DeliveryStatus
    last_error: str | None
    expired: bool = False  # expired within the last 30 days: only `Resend` is left


@dataclass(frozen=True)
class InvitationPage:
    """One page of pending invitations as a table shows it, and how many match in all."""

    invitations: list[PendingInvitation]
    total: int


PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
SORTABLE = {
    'email': col(Invitation.email),
    'role': col(Invitation.role),
    'expires': col(Invitation.expires_at),
    'sent': col(Invitation.sent_at),
}


@dataclass(frozen=True)
class InvitationView:
    """What `/invite/<token>` shows: the state, and for a valid token who invited whom to what."""

    state: LinkState
    email: str = ''
    role: Role = Role.MEMBER
    organization_name: str = ''
    inviter: str = ''

    @property
    def message(self) -> str:
        return STATE_MESSAGES.get(self.state, '')


def invite_member(
    *, session: Session, actor: User, email: str, role: str | None, ip: str | None = None
) -> IssuedInvitation:
    """Store an invitation for `email` (admins only); a pending invite for the same address is renewed instead."""
    _lock_organization(session=session, organization_id=actor.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor)
    email = auth.normalize_email(email)
    if role not in set(Role):
        raise ValidationFailed('Choose Member or Admin', field='role')
    role = Role(role)
    existing_user = session.exec(select(User).where(User.email == email, User.status == UserStatus.ACTIVE)).first()
    if existing_user is not None:
        if existing_user.organization_id == actor.organization_id:
            raise ValidationFailed(f'{email} is already a member of your team', field='email')
        raise ValidationFailed(f'{email} already has an account in another organization', field='email')
    _check_daily_limit(session=session, organization_id=actor.organization_id)
    pending = session.exec(
        select(Invitation)
        .where(
            Invitation.organization_id == actor.organization_id,
            Invitation.email == email,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
            col(Invitation.expires_at) > utcnow() - KEPT_AFTER_EXPIRY,  # an expired one still listed is renewed too
        )
        .order_by(col(Invitation.expires_at).desc())
    ).first()
    if pending is not None:
        pending.role = role
        pending.invited_by_id = actor.id
        return _renew(session=session, actor=actor, invitation=pending, ip=ip)
    now = utcnow()
    invitation = Invitation(
        organization_id=actor.organization_id,
        email=email,
        role=role,
        invited_by_id=actor.id,
        # A placeholder until the id exists: the token is derived from it.
        token_hash=secrets.token_hex(32),
        sent_at=now,
        created_at=now,
        expires_at=now + LIFETIME,
        delivery_status=_initial_status(),
    )
    invitation.sending_owner = _owner_of(invitation.delivery_status)
    session.add(invitation)
    session.flush()
    token = _token_for(invitation)
    invitation.token_hash = crypto.sha256_hex(token)
    session.add(invitation)
    session.flush()
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.INVITATION_SENT,
        target=f'{email} ({role})',
        ip=ip,
    )
    return _issued(session=session, invitation=invitation, token=token, inviter=actor, resent=False)


def resend_invitation(*, session: Session, actor: User, invitation_id: int, ip: str | None = None) -> IssuedInvitation:
    """A new link and a fresh 7 days for a pending invitation, or one that expired within the last 30 days; the old
    link stops working."""
    _lock_organization(session=session, organization_id=actor.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor)
    invitation = _pending_invitation(session=session, actor=actor, invitation_id=invitation_id, expired_too=True)
    _check_daily_limit(session=session, organization_id=actor.organization_id)
    return _renew(session=session, actor=actor, invitation=invitation, ip=ip)


def revoke_invitation(*, session: Session, actor: User, invitation_id: int, ip: str | None = None) -> Invitation:
    """Withdraw a pending invitation; its link stops working."""
    _lock_organization(session=session, organization_id=actor.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor)
    invitation = _pending_invitation(session=session, actor=actor, invitation_id=invitation_id)
    invitation.revoked_at = utcnow()
    session.add(invitation)
    events.publish(session=session, kind=events.EventKind.TEAM_CHANGED, organization_id=actor.organization_id)
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.INVITATION_REVOKED,
        target=invitation.email,
        ip=ip,
    )
    return invitation


def invitation_link(*, session: Session, actor: User, invitation_id: int) -> str:
    """The current link of a pending invitation, for `Copy link` (the one already emailed keeps working)."""
    require_admin(session=session, actor=actor)
    invitation = _pending_invitation(session=session, actor=actor, invitation_id=invitation_id)
    token = _token_for(invitation)
    if crypto.sha256_hex(token) != invitation.token_hash:
        # The server secret changed since this link was made: issue a new one (the old one still matches its hash).
        raise ValidationFailed('This link can no longer be shown. Use Resend to make a new one.')
    return _link(token)


def page_pending(
    *,
    session: Session,
    actor: User,
    search: str = '',
    sort_by: str | None = None,
    descending: bool | None = None,
    offset: int = 0,
    limit: int | None = PAGE_SIZE,
) -> InvitationPage:
    """One page of the pending invitations and those expired within the last 30 days (admins only), filtered by a
    part of the email or the inviter's name, sorted by `sort_by` (email, role, expires or sent; the newest sent first
    by default)."""
    require_admin(session=session, actor=actor)
    now = utcnow()
    conditions = [
        Invitation.organization_id == actor.organization_id,
        col(Invitation.accepted_at).is_(None),
        col(Invitation.revoked_at).is_(None),
        col(Invitation.expires_at) > now - KEPT_AFTER_EXPIRY,
    ]
    term = search.strip().lower()[:200]
    if term:
        conditions.append(
            or_(
                col(Invitation.email).contains(term, autoescape=True),
                func.lower(col(User.name)).contains(term, autoescape=True),
            )
        )
    joined = (
        select(func.count())
        .select_from(Invitation)
        .join(User, col(Invitation.invited_by_id) == col(User.id), isouter=True)
        .where(*conditions)
    )
    total = session.exec(joined).one()
    if sort_by not in SORTABLE:
        sort_by, descending = 'sent', True if descending is None else descending
    order = SORTABLE[sort_by]
    statement = (
        select(Invitation, User)
        .join(User, col(Invitation.invited_by_id) == col(User.id), isouter=True)
        .where(*conditions)
        .order_by(
            order.desc() if descending else order, col(Invitation.id).desc() if descending else col(Invitation.id)
        )
        .offset(max(offset, 0))
    )
    if limit is not None:
        statement = statement.limit(min(max(limit, 1), MAX_PAGE_SIZE))
    rows = session.exec(statement).all()
    return InvitationPage(
        invitations=[
            PendingInvitation(
                id=stored_id(invitation),
                email=invitation.email,
                role=invitation.role,
                invited_by=inviter.name if inviter else 'a former member',
                expires_at=invitation.expires_at,
                delivery_status=invitation.delivery_status,
                last_error=invitation.last_error,
                expired=invitation.expires_at <= now,
            )
            for invitation, inviter in rows
        ],
        total=total,
    )


def send_invitation_email(issued: IssuedInvitation) -> None:
    """Email the invitation. Blocking SMTP: call off the event loop, with no database transaction open."""
    mail.send_email(invitation_email(issued))


def record_delivery(*, session: Session, issued: IssuedInvitation, error: str | None) -> DeliveryStatus:
    """Mark the outcome of a send: 'sent', or 'failed' with the error. Returns the stored status."""
    # FOR UPDATE: a resend committing meanwhile is seen (its new token), and its own outcome is left alone.
    invitation = session.get(Invitation, issued.invitation_id, with_for_update=True, populate_existing=True)
    # A newer resend replaced the token meanwhile: its own outcome is the one that counts.
    if invitation is None or invitation.token_hash != issued.token_hash:
        return issued.delivery_status
    invitation.delivery_status = DeliveryStatus.FAILED if error else DeliveryStatus.SENT
    invitation.sending_owner = None
    invitation.last_error = error[:1000] if error else None
    session.add(invitation)
    events.publish(session=session, kind=events.EventKind.TEAM_CHANGED, organization_id=invitation.organization_id)
    return invitation.delivery_status


def deliver_invitation(*, scopes: Scopes, issued: IssuedInvitation) -> DeliveryStatus | str:
    """Send an issued invitation (the SMTP conversation outside any transaction), then record its outcome in a short
    one: `SENT`, or the error, which the team list shows."""
    try:
        send_invitation_email(issued)
        error = None
    except ServiceError as failure:
        error = str(failure)
    scopes.writing(lambda session: record_delivery(session=session, issued=issued, error=error))
    return error or DeliveryStatus.SENT


INTERRUPTED = 'interrupted; resend'
# A serving process on PostgreSQL beats every few seconds (services/operations/send_watch.py); one silent this long is
# gone.
HEARTBEAT_STALE_AFTER = timedelta(seconds=10)
HEARTBEAT_FORGOTTEN_AFTER = timedelta(hours=1)  # rows of processes long gone are deleted


def beat(*, session: Session) -> None:
    """Say that this process is alive: the sends it owns are in flight, not interrupted."""
    heartbeat = session.get(ProcessHeartbeat, events.PROCESS_ID)
    if heartbeat is None:
        heartbeat = ProcessHeartbeat(process_id=events.PROCESS_ID, beat_at=utcnow())
    heartbeat.beat_at = utcnow()
    session.add(heartbeat)


def has_interrupted_sends(*, session: Session) -> bool:
    """Whether any invitation is `Sending…` for a process that is gone (a cheap read, so idle sweeps never write)."""
    return session.exec(select(Invitation.id).where(*_interrupted()).limit(1)).first() is not None


def mark_interrupted_sends(*, session: Session) -> int:
    """Invitations left `Sending…` by a process that is gone become `Email failed` (interrupted; resend), and every
    process's open team lists are told. A send owned by a live process (its heartbeat fresh) is left alone: it is
    still running, and its own record_delivery says how it ended. Returns how many were marked."""
    return len(mark_interrupted_sends_by_organization(session=session))


def mark_interrupted_sends_by_organization(*, session: Session) -> list[int]:
    """As mark_interrupted_sends; returns the organization of each invitation marked (for this process's pages)."""
    rows = session.exec(select(Invitation.id, Invitation.organization_id).where(*_interrupted())).all()
    if rows:
        session.exec(
            update(Invitation)
            .where(col(Invitation.id).in_([invitation_id for invitation_id, _ in rows]), *_interrupted())
            .values(delivery_status=DeliveryStatus.FAILED, last_error=INTERRUPTED, sending_owner=None)
        )
        for organization_id in sorted({organization_id for _, organization_id in rows}):
            events.publish(session=session, kind=events.EventKind.TEAM_CHANGED, organization_id=organization_id)
    forgotten = utcnow() - HEARTBEAT_FORGOTTEN_AFTER
    session.exec(delete(ProcessHeartbeat).where(col(ProcessHeartbeat.beat_at) < forgotten))
    return [organization_id for _, organization_id in rows]


def _interrupted() -> list[Any]:
    """`Sending…` with no owner, or an owner without a fresh heartbeat."""
    alive = select(ProcessHeartbeat.process_id).where(col(ProcessHeartbeat.beat_at) > utcnow() - HEARTBEAT_STALE_AFTER)
    return [
        col(Invitation.delivery_status) == DeliveryStatus.SENDING,
        or_(col(Invitation.sending_owner).is_(None), col(Invitation.sending_owner).not_in(alive)),
    ]


def _owner_of(status: DeliveryStatus) -> str | None:
    return events.PROCESS_ID if status == DeliveryStatus.SENDING else None


def lookup_invitation(*, session: Session, token: str) -> InvitationView:
    """The state of the invitation behind `token` (anyone holding the link may ask)."""
    invitation = _by_token(session=session, token=token)
    if invitation is None:
        return InvitationView(state=LinkState.UNKNOWN)
    state = _state(invitation)
    if state != LinkState.VALID:
        return InvitationView(state=state)
    organization = session.get(Organization, invitation.organization_id)
    inviter = session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
    return InvitationView(
        state=LinkState.VALID,
        email=invitation.email,
        role=invitation.role,
        organization_name=organization.name if organization else '',
        inviter=f'{inviter.name} ({inviter.email})' if inviter else 'Your team',
    )


def accept_invitation(*, session: Session, token: str, name: str, password_hash: str, ip: str | None = None) -> User:
    """Create the invited account with the invited email (password hashed by `auth.new_password_hash` first);
    refused for unknown, revoked, expired or used tokens. Two accepts of one token at once create one user."""
    name = auth.validate_name(name)
    view = lookup_invitation(session=session, token=token)
    if view.state != LinkState.VALID:
        raise ValidationFailed(view.message)
    return _claim_and_create(
        session=session, token_hash=crypto.sha256_hex(token), name=name, password_hash=password_hash, ip=ip
    )


@dataclass(frozen=True)
class Joined:
    """An accepted invitation: the organization the new account joined, and where its browser goes next."""

    organization_id: int
    next_step: Next


def accept_with_password(
    *, scopes: Scopes, token: str, name: str, password: str, ip: str | None, user_agent: str | None
) -> Joined:
    """`Accept invitation` with a name and a password (hashed outside the transaction): the new account, then its
    first session, or the second step first when the organization requires a second factor."""
    auth.validate_name(name)
    password_hash = auth.new_password_hash(password)
    with scopes.write() as session:
        user = accept_invitation(session=session, token=token, name=name, password_hash=password_hash, ip=ip)
        next_step = after_password(session=session, user=user, ip=ip, user_agent=user_agent)
        return Joined(organization_id=user.organization_id, next_step=next_step)


def pending_for_email(*, session: Session, email: str) -> Invitation | None:
    """The newest invitation for `email` that can still be accepted (single sign-on accepts it without the link)."""
    now = utcnow()
    return session.exec(
        select(Invitation)
        .where(
            Invitation.email == email,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
            col(Invitation.expires_at) > now,
        )
        .order_by(col(Invitation.sent_at).desc(), col(Invitation.id).desc())
    ).first()


def accept_pending(*, session: Session, invitation: Invitation, name: str, ip: str | None = None) -> User:
    """Accept a pending invitation for someone the identity provider vouched for (`pending_for_email`): the account
    has no password of its own (single sign-on signs it in)."""
    return _claim_and_create(session=session, token_hash=invitation.token_hash, name=name, password_hash='', ip=ip)


def _claim_and_create(*, session: Session, token_hash: str, name: str, password_hash: str, ip: str | None) -> User:
    """Claim the invitation (once: two accepts at once create one user) and create or revive its account."""
    now = utcnow()
    email = session.exec(select(Invitation.email).where(Invitation.token_hash == token_hash)).first()
    if email is not None:
        lock_account(session=session, email=email)  # one account per email, also from two invitations at once
    claimed = session.exec(
        update(Invitation)
        .where(
            col(Invitation.token_hash) == token_hash,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
            col(Invitation.expires_at) > now,
        )
        .values(accepted_at=now)
    )
    if claimed.rowcount != 1:
        raise ValidationFailed(STATE_MESSAGES[LinkState.USED])
    invitation = session.exec(select(Invitation).where(Invitation.token_hash == token_hash)).one()
    user = session.exec(select(User).where(User.email == invitation.email)).first()
    if user is not None and user.status == UserStatus.ACTIVE:
        raise ValidationFailed(f'{invitation.email} already has an account. Sign in instead.', field='email')
    if user is None:
        user = User(
            organization_id=invitation.organization_id,
            email=invitation.email,
            name=name,
            password_hash=password_hash,
            role=invitation.role,
        )
    else:
        # A removed member invited back: the same row comes back to life with a new password and nothing else (no
        # passkey, app, recovery code, reset link or session from before survives: it may be someone else now).
        assert user.id is not None
        credentials.forget_all(session=session, user_id=user.id)
        user.organization_id = invitation.organization_id
        user.name, user.password_hash, user.role = name, password_hash, invitation.role
        user.status = UserStatus.ACTIVE
    session.add(user)
    session.flush()
    accepted = bus.InvitationAccepted(
        organization_id=invitation.organization_id,
        actor_id=user.id,
        actor_email=user.email,
        ip=ip,
        user_id=stored_id(user),
        email=invitation.email,
        role=Role(invitation.role),
    )
    audit.record(session=session, event=accepted)  # the team lists show the new member
    return user


def invitation_email(issued: IssuedInvitation) -> mail.Email:
    organization = issued.organization_name
    expires = issued.expires_at.strftime('%Y-%m-%d %H:%M UTC')
    role = issued.role.label.lower()
    text = (
        f'{issued.inviter_name} ({issued.inviter_email}) invited you to join {organization} on the '
        f'CX Toolbox Dashboard as {role}.\n\n'
        f'Accept the invitation and choose your password here:\n{issued.link}\n\n'
        f'The link works until {expires} and only once. If you did not expect this invitation, ignore this email.\n'
    )
    e = html.escape
    body = (
        f'<p>{e(issued.inviter_name)} ({e(issued.inviter_email)}) invited you to join <strong>{e(organization)}'
        f'</strong> on the CX Toolbox Dashboard as {e(role)}.</p>'
        f'<p><a href="{e(issued.link)}">Accept the invitation</a></p>'
        f'<p>Or paste this link into your browser:<br>{e(issued.link)}</p>'
        f'<p>The link works until {e(expires)} and only once. '
        'If you did not expect this invitation, ignore this email.</p>'
    )
    return mail.Email(
        to=issued.email,
        subject=f'You are invited to join {organization} on CX Toolbox',
        text=text,
        html=f'<html><body>{body}</body></html>',
        kind='invitation',
    )


def _renew(*, session: Session, actor: User, invitation: Invitation, ip: str | None) -> IssuedInvitation:
    now = utcnow()
    invitation.sent_at = now
    invitation.expires_at = now + LIFETIME
    invitation.delivery_status = _initial_status()
    invitation.sending_owner = _owner_of(invitation.delivery_status)
    invitation.last_error = None
    token = _token_for(invitation)
    invitation.token_hash = crypto.sha256_hex(token)
    session.add(invitation)
    session.flush()
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.INVITATION_RESENT,
        target=f'{invitation.email} ({invitation.role})',
        ip=ip,
    )
    inviter = session.get(User, invitation.invited_by_id) if invitation.invited_by_id else actor
    return _issued(session=session, invitation=invitation, token=token, inviter=inviter or actor, resent=True)


def _issued(*, session: Session, invitation: Invitation, token: str, inviter: User, resent: bool) -> IssuedInvitation:
    # Invited or resent: other processes show it in their team lists.
    events.publish(session=session, kind=events.EventKind.TEAM_CHANGED, organization_id=invitation.organization_id)
    organization = session.get(Organization, invitation.organization_id)
    return IssuedInvitation(
        invitation_id=stored_id(invitation),
        token_hash=invitation.token_hash,
        email=invitation.email,
        role=invitation.role,
        link=_link(token),
        organization_name=organization.name if organization else '',
        inviter_name=inviter.name,
        inviter_email=inviter.email,
        expires_at=invitation.expires_at,
        resent=resent,
        delivery_status=invitation.delivery_status,
    )


def _lock_organization(*, session: Session, organization_id: int) -> None:
    """The organization's row lock, as `team.organizations.lock_organization` takes it (that layer is above this
    one): the daily limit and the one pending invitation per address are counted one change at a time."""
    session.exec(select(Organization.id).where(Organization.id == organization_id).with_for_update(key_share=True))


def _pending_invitation(*, session: Session, actor: User, invitation_id: int, expired_too: bool = False) -> Invitation:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.organization_id != actor.organization_id:
        raise NotFound('That invitation does not exist.')
    state = _state(invitation)
    if expired_too and state == LinkState.EXPIRED and invitation.expires_at > utcnow() - KEPT_AFTER_EXPIRY:
        return invitation
    if state != LinkState.VALID:
        raise ValidationFailed(STATE_MESSAGES[state])
    return invitation


def _state(invitation: Invitation) -> LinkState:
    if invitation.accepted_at is not None:
        return LinkState.USED
    if invitation.revoked_at is not None:
        return LinkState.REVOKED
    if invitation.expires_at <= utcnow():
        return LinkState.EXPIRED
    return LinkState.VALID


def _by_token(*, session: Session, token: str) -> Invitation | None:
    if not token or len(token) > 100:
        return None
    return session.exec(select(Invitation).where(Invitation.token_hash == crypto.sha256_hex(token))).first()


def _check_daily_limit(*, session: Session, organization_id: int) -> None:
    """At most DAILY_LIMIT invitation emails (new or resent) per organization per 24 hours."""
    sent = session.exec(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.organization_id == organization_id,
            col(AuditEvent.action).in_([AuditAction.INVITATION_SENT, AuditAction.INVITATION_RESENT]),
            col(AuditEvent.created_at) > utcnow() - timedelta(hours=24),
        )
    ).one()
    if sent >= DAILY_LIMIT:
        raise ValidationFailed(
            f'Your organization sent {DAILY_LIMIT} invitations in the last 24 hours. Try again later.'
        )


def _initial_status() -> DeliveryStatus:
    return DeliveryStatus.SENDING if current_settings().mail_configured else DeliveryStatus.NOT_EMAILED


def _token_for(invitation: Invitation) -> str:
    """32 bytes, URL-safe, derived from the server secret and this issue of the invitation (id and send time).

    Only the token's SHA-256 is stored; deriving it (instead of drawing it at random) is what lets `Copy link` show
    the link again later without keeping it in the database. A resend changes the send time, so the old link dies.
    """
    message = f'invitation:{invitation.id}:{invitation.sent_at.isoformat()}'.encode()
    digest = hmac.new(_link_key(resolve_secret_key(current_settings())), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b'=').decode()


@cache
def _link_key(secret: str) -> bytes:
    return crypto.derive_key(secret, 'invitation-links')


def _link(token: str) -> str:
    return f'{current_settings().resolved_public_url}/invite/{token}'
