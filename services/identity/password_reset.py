"""Password reset: a single-use emailed link, valid for one hour, that ends the user's other sessions."""

import html
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from models import AuditAction, LinkState, Organization, PasswordResetToken, User, UserStatus
from models.base import stored_id, utcnow
from services import crypto, mail
from services.acting import Scopes
from services.audit import record_event
from services.config import current_settings
from services.db import lock_account
from services.errors import NotFound, PermissionDenied, ServiceError, ValidationFailed
from services.identity import attempts, auth, code_lock, sessions, single_sign_on
from services.identity.next_step import Next, after_password
from services.permissions import require_admin

LIFETIME = timedelta(hours=1)
HOURLY_LIMIT = 5
STATE_MESSAGES = {
    LinkState.UNKNOWN: 'This reset link is not valid',
    LinkState.EXPIRED: 'This reset link has expired',
    LinkState.USED: 'This reset link has already been used',
}


@dataclass(frozen=True)
class IssuedReset:
    email: str
    name: str
    organization_name: str
    link: str
    expires_at: datetime


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PasswordReset:
    """A reset password: whose (their other pages end), and where this browser goes next (a session, or the second
    step: a mailbox alone never signs in an account with a second factor)."""

    user_id: int
    next_step: Next


def send_reset_link(*, scopes: Scopes, email: str, ip: str | None) -> None:
    """`Send reset link`: a link for an active account with this email, emailed outside the transaction. Nothing
    tells whether the address has an account: an unknown one, too many requests or a failed send are only logged."""
    issued = scopes.writing(lambda session: request_reset(session=session, email=email, ip=ip))
    if issued is None:
        return
    try:
        send_reset_email(issued)
    except ServiceError as error:
        log.warning('password reset email to %s not sent: %s', issued.email, error)


def reset_with_link(
    *, scopes: Scopes, token: str, password: str, ip: str | None, user_agent: str | None
) -> PasswordReset:
    """`Reset password` from an emailed link: the new password (hashed outside the transaction), every other session
    of the account ends, and this browser signs in."""
    password_hash = auth.new_password_hash(password)
    with scopes.write() as session:
        user = reset_password(session=session, token=token, password_hash=password_hash, ip=ip)
        return PasswordReset(
            user_id=stored_id(user),
            next_step=after_password(session=session, user=user, ip=ip, user_agent=user_agent),
        )


def request_reset(
    *, session: Session, email: str, ip: str | None = None, requested_by: str | None = None
) -> IssuedReset | None:
    """A reset link for an active account with this email, or None (unknown address, or too many requests).

    The caller answers the same either way; only the email (sent off the loop) differs. `requested_by` names who
    asked in the audit log when it is not the account's owner (the server's command line).
    """
    try:
        email = auth.normalize_email(email)
    except ValidationFailed:
        return None
    user = session.exec(select(User).where(User.email == email, User.status == UserStatus.ACTIVE)).first()
    if user is None or single_sign_on.password_refused(session=session, user=user):
        return None
    issued = _issue(session=session, user=user)
    if issued is None:
        return None
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=None,
        actor_email=requested_by or email,
        action=AuditAction.PASSWORD_RESET_REQUESTED,
        target=email,
        ip=ip,
    )
    return issued


def admin_reset_link(*, session: Session, actor: User, member_id: int, ip: str | None = None) -> IssuedReset:
    """A one-time reset link for a teammate, for an admin to hand over when no mail server is configured (admins
    only, same organization, not for themselves; audited). It works like an emailed one: once, for 1 hour."""
    require_admin(session=session, actor=actor)
    if member_id == actor.id:
        raise PermissionDenied('Change your own password on the Security page instead.')
    member = session.get(User, member_id)
    if member is None or member.organization_id != actor.organization_id or member.status != UserStatus.ACTIVE:
        raise NotFound('That person is not on your team.')
    issued = _issue(session=session, user=member)
    if issued is None:
        raise ValidationFailed(f'{HOURLY_LIMIT} reset links were made for {member.email} in the last hour. Try later.')
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.PASSWORD_RESET_LINK_CREATED,
        target=member.email,
        ip=ip,
    )
    return issued


def _issue(*, session: Session, user: User) -> IssuedReset | None:
    """Store a new one-time link for `user` (valid for LIFETIME); None when HOURLY_LIMIT were made in the last hour."""
    lock_account(session=session, email=user.email)  # requests at once are counted one after another
    now = utcnow()
    recent = session.exec(
        select(func.count())
        .select_from(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, col(PasswordResetToken.created_at) > now - timedelta(hours=1))
    ).one()
    if recent >= HOURLY_LIMIT:
        return None
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordResetToken(
            user_id=stored_id(user), token_hash=crypto.sha256_hex(token), created_at=now, expires_at=now + LIFETIME
        )
    )
    organization = session.get(Organization, user.organization_id)
    return IssuedReset(
        email=user.email,
        name=user.name,
        organization_name=organization.name if organization else '',
        link=f'{current_settings().resolved_public_url}/reset-password/{token}',
        expires_at=now + LIFETIME,
    )


def send_reset_email(issued: IssuedReset) -> None:
    """Email the reset link. Blocking SMTP: call off the event loop, with no database transaction open."""
    mail.send_email(reset_email(issued))


def token_state(*, session: Session, token: str) -> LinkState:
    """Whether a reset link still works (valid, unknown, expired or used)."""
    record = _by_token(session=session, token=token)
    if record is None:
        return LinkState.UNKNOWN
    if record.used_at is not None:
        return LinkState.USED
    if record.expires_at <= utcnow():
        return LinkState.EXPIRED
    user = session.get(User, record.user_id)
    return LinkState.VALID if user is not None and user.status == UserStatus.ACTIVE else LinkState.UNKNOWN


def reset_password(*, session: Session, token: str, password_hash: str, ip: str | None = None) -> User:
    """Set a new password (hashed by `auth.new_password_hash` first) with a valid link; the link and any other open
    link die, and every session of the user ends."""
    state = token_state(session=session, token=token)
    if state != LinkState.VALID:
        raise ValidationFailed(STATE_MESSAGES[state])
    now = utcnow()
    token_hash = crypto.sha256_hex(token)
    claimed = session.exec(
        update(PasswordResetToken)
        .where(
            col(PasswordResetToken.token_hash) == token_hash,
            col(PasswordResetToken.used_at).is_(None),
            col(PasswordResetToken.expires_at) > now,
        )
        .values(used_at=now)
    )
    if claimed.rowcount != 1:
        raise ValidationFailed(STATE_MESSAGES[LinkState.USED])
    record = session.exec(select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash)).one()
    user = session.get(User, record.user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        raise ValidationFailed(STATE_MESSAGES[LinkState.UNKNOWN])
    single_sign_on.refuse_password_reset(session=session, user=user)
    user.password_hash = password_hash
    session.add(user)
    assert user.id is not None
    sessions.end_all(session=session, user_id=user.id)
    session.exec(
        update(PasswordResetToken)
        .where(col(PasswordResetToken.user_id) == user.id, col(PasswordResetToken.used_at).is_(None))
        .values(used_at=now)
    )
    # The owner proved control of the mailbox: a lockout from earlier wrong guesses no longer applies.
    attempts.unlock(session=session, email=user.email)
    code_lock.clear(session=session, user_id=user.id)  # and the wrong codes: the password they went with is gone
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.PASSWORD_RESET,
        target=user.email,
        ip=ip,
    )
    session.flush()
    return user


def reset_email(issued: IssuedReset) -> mail.Email:
    organization = issued.organization_name
    text = (
        f'Hello {issued.name},\n\n'
        f'someone asked to reset the password of your CX Toolbox Dashboard account for {organization}.\n'
        f'Choose a new password here (the link works once, for 1 hour):\n{issued.link}\n\n'
        'If you did not ask for this, ignore this email: your password stays as it is.\n'
    )
    e = html.escape
    body = (
        f'<p>Hello {e(issued.name)},</p>'
        f'<p>someone asked to reset the password of your CX Toolbox Dashboard account for '
        f'<strong>{e(organization)}</strong>.</p>'
        f'<p><a href="{e(issued.link)}">Choose a new password</a> (the link works once, for 1 hour)</p>'
        f'<p>Or paste this link into your browser:<br>{e(issued.link)}</p>'
        '<p>If you did not ask for this, ignore this email: your password stays as it is.</p>'
    )
    return mail.Email(
        to=issued.email,
        subject=f'Reset your CX Toolbox password for {organization}',
        text=text,
        html=f'<html><body>{body}</body></html>',
        kind='password_reset',
    )


def _by_token(*, session: Session, token: str) -> PasswordResetToken | None:
    if not token or len(token) > 100:
        return None
    return session.exec(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == crypto.sha256_hex(token))
    ).first()
