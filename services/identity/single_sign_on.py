"""Single sign-on's rules: who gets in with the identity provider, `Require single sign-on for everyone`, and the
admins' way back in with a password.

Who gets in (the provider has already proved the identity, `services/identity/oidc.py`):
- someone linked before, by the provider's `sub` (their email may have changed since), while they are a member;
- the first time, by a verified email (`email_verified` true) that belongs to an active member (links the account),
  to a pending invitation (accepts it, with the invited role) or to an allowed domain (joins as a member).
Anyone else is refused and nothing is created: a `Refusal` is returned, the caller rolls its transaction back and
records the refusal (`record_refusal`) in a new one.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models import AuditAction, Organization, Role, SingleSignOnLink, User, UserStatus
from models.base import utcnow
from services import events
from services.acting import Actor, Scopes
from services.audit import record_event
from services.config import current_settings
from services.db import lock, lock_account
from services.errors import NotConfigured, NotFound, PermissionDenied, ValidationFailed
from services.identity import auth, invitations, sessions
from services.identity.next_step import Next, session_started
from services.identity.oidc import ProviderIdentity
from services.permissions import require_admin, require_recent_password

FRESH_SIGN_IN_SLACK = 10.0  # seconds of clock difference allowed between us and the provider for `Confirm with …`


def provider_name() -> str:
    return current_settings().oidc_name


def no_account(email: str) -> str:
    return f'No account for {email}. Ask an admin to invite you.'


@dataclass(frozen=True)
class Refusal:
    """Why single sign-on let nobody in: `message` for the person; `reason`, the email and the organization (when
    known) for the audit log."""

    message: str
    reason: str
    email: str | None = None
    organization_id: int | None = None


SESSION_ENDED = 'Your session has ended. Sign in again.'


class _RolledBack(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


# --- the use cases of the provider's callback -------------------------------------------------------------------


def sign_in_with_provider(
    *,
    scopes: Scopes,
    identity: ProviderIdentity,
    ip: str | None,
    user_agent: str | None,
    invitation_token: str | None = None,
) -> Next | Refusal:
    """The provider proved `identity`: who gets in (`sign_in`) and their new session, or why not. A refusal rolls
    everything back and is recorded in a transaction of its own."""
    try:
        with scopes.write() as session:
            outcome = sign_in(session=session, identity=identity, ip=ip, invitation_token=invitation_token)
            if isinstance(outcome, Refusal):
                raise _RolledBack(outcome)
            return session_started(start_session(session=session, user=outcome, ip=ip, user_agent=user_agent))
    except _RolledBack as rolled_back:
        record_refused(scopes=scopes, refusal=rolled_back.refusal, ip=ip)
        return rolled_back.refusal


def confirm_with_provider(
    *, scopes: Scopes, identity: ProviderIdentity, token: str | None, started_at: float, ip: str | None
) -> Refusal | None:
    """`Confirm with …` came back to the browser session behind `token`: None once its password time is renewed,
    else why not (recorded)."""
    with scopes.write() as session:
        signed = sessions.signed_in(session=session, token=token)
        if signed is None:
            return Refusal(SESSION_ENDED, 'session ended')
        outcome = confirm(
            session=session,
            identity=identity,
            session_id=signed.session_id,
            user=signed.user,
            started_at=started_at,
            ip=ip,
        )
        if isinstance(outcome, Refusal):
            record_refusal(session=session, refusal=outcome, ip=ip)
            return outcome
    return None


def record_refused(*, scopes: Scopes, refusal: Refusal, ip: str | None) -> None:
    """The audit entry for a single sign-on that let nobody in, in a transaction of its own."""
    scopes.writing(lambda session: record_refusal(session=session, refusal=refusal, ip=ip))


# --- the rules -----------------------------------------------------------------------------------------------------


def sign_in(
    *, session: Session, identity: ProviderIdentity, ip: str | None, invitation_token: str | None = None
) -> User | Refusal:
    """The member the provider's identity signs in (linked, joined or invited now), or why not (audited either way).
    With `invitation_token` (`Accept with …` on the invitation page), that invitation is the one accepted."""
    # One provider account links once, also when its first two sign-ins come back at the same moment.
    lock(session=session, name=f'sso:{identity.issuer}:{identity.subject}')
    link = _link_of(session=session, identity=identity)
    linked = session.get(User, link.user_id) if link is not None else None
    if linked is not None and linked.status == UserStatus.ACTIVE and invitation_token is None:
        return _signed_in(session=session, user=linked, link=link, ip=ip)

    email = _verified_email(identity)
    if isinstance(email, Refusal):
        return _refused(session=session, refusal=email, email=identity.email or identity.subject, ip=ip)
    lock_account(session=session, email=email)  # one account per email, joined or invited
    name = _name_for(identity, email)

    if invitation_token is not None:
        return _accept_invitation(
            session=session, identity=identity, email=email, name=name, token=invitation_token, ip=ip
        )
    return _first_sign_in(session=session, identity=identity, email=email, name=name, ip=ip)


def _first_sign_in(
    *, session: Session, identity: ProviderIdentity, email: str, name: str, ip: str | None
) -> User | Refusal:
    """A provider account not linked yet, by its verified email: an active member, a pending invitation, or an
    allowed domain."""
    user = session.exec(select(User).where(User.email == email)).first()
    if user is not None and user.status == UserStatus.ACTIVE:
        return _link_and_sign_in(session=session, identity=identity, user=user, ip=ip)
    pending = invitations.pending_for_email(session=session, email=email)
    if pending is not None:
        user = invitations.accept_pending(session=session, invitation=pending, name=name, ip=ip)
        return _link_and_sign_in(session=session, identity=identity, user=user, ip=ip, new=True)
    if user is not None:  # removed, and not invited back
        refusal = Refusal(no_account(email), 'removed member')
        return _refused(session=session, refusal=refusal, email=email, ip=ip, organization_id=user.organization_id)
    return _join_by_domain(session=session, identity=identity, email=email, name=name, ip=ip)


def _join_by_domain(
    *, session: Session, identity: ProviderIdentity, email: str, name: str, ip: str | None
) -> User | Refusal:
    domain = email.rpartition('@')[2]
    organization = _organization_for_domains(session=session)
    if domain not in current_settings().oidc_allowed_domain_set or organization is None:
        refusal = Refusal(no_account(email), 'no account or invitation')
        return _refused(session=session, refusal=refusal, email=email, ip=ip)
    assert organization.id is not None
    user = User(organization_id=organization.id, email=email, name=name, password_hash='', role=Role.MEMBER)
    session.add(user)
    session.flush()
    events.publish(session=session, kind=events.EventKind.TEAM_CHANGED, organization_id=organization.id)
    record_event(
        session=session,
        organization_id=organization.id,
        actor=user,
        action=AuditAction.SSO_JOINED,
        target=email,
        ip=ip,
    )
    return _link_and_sign_in(session=session, identity=identity, user=user, ip=ip, new=True)


def _link_of(*, session: Session, identity: ProviderIdentity) -> SingleSignOnLink | None:
    return session.exec(
        select(SingleSignOnLink)
        .where(SingleSignOnLink.issuer == identity.issuer, SingleSignOnLink.subject == identity.subject)
        .with_for_update()  # its last use is written on sign-in: a removal deleting it meanwhile waits for the sign-in
    ).first()


def start_session(*, session: Session, user: User, ip: str | None, user_agent: str | None) -> str:
    """A new browser session for someone single sign-on let in; its handoff code (`/session/start`)."""
    return sessions.start(session=session, user=user, ip=ip, user_agent=user_agent, single_sign_on=True)


def record_refusal(*, session: Session, refusal: Refusal, ip: str | None) -> None:
    """The audit entry for a refused sign-in (in its own transaction, after the refused one was rolled back)."""
    organization_id = refusal.organization_id
    if organization_id is None and refusal.email:
        organization_id = session.exec(select(User.organization_id).where(User.email == refusal.email)).first()
    record_event(
        session=session,
        organization_id=organization_id,
        actor=None,
        actor_email=refusal.email,
        action=AuditAction.SSO_SIGN_IN_REFUSED,
        target=(f'{refusal.email}: {refusal.reason}' if refusal.email else refusal.reason)[:500],
        ip=ip,
    )


def confirm(
    *, session: Session, identity: ProviderIdentity, session_id: int, user: User, started_at: float, ip: str | None
) -> datetime | Refusal:
    """`Confirm with …`: a fresh sign-in at the provider by the same person counts as entering the password again
    in this browser session; the new password time, or why not."""
    link = _link_of(session=session, identity=identity)
    if link is None or link.user_id != user.id:
        refusal = Refusal(f'You confirmed as someone else at {provider_name()}. Nothing was changed.', 'other person')
        return _refused(session=session, refusal=refusal, email=user.email, ip=ip, organization_id=user.organization_id)
    if identity.auth_time is None or identity.auth_time < started_at - FRESH_SIGN_IN_SLACK:
        refusal = Refusal(f'{provider_name()} did not ask for your sign-in again. Nothing was changed.', 'not fresh')
        return _refused(session=session, refusal=refusal, email=user.email, ip=ip, organization_id=user.organization_id)
    confirmed_at = sessions.password_entered(session=session, session_id=session_id)
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.SSO_CONFIRMED,
        target=user.email,
        ip=ip,
    )
    return confirmed_at


def has_password(user: User) -> bool:
    """Someone who joined through the provider has no password here (and confirms with the provider instead)."""
    return bool(user.password_hash)


# --- `Require single sign-on for everyone` ----------------------------------------------------------------------


def set_requirement(*, session: Session, actor: Actor, required: bool) -> bool:
    """Turn `Require single sign-on for everyone` on or off (admins, recent password); returns the new value."""
    # The organization's row lock (as `team.organizations.lock_organization`): one change of the setting at
    # a time, and the role checked after it is current.
    organization = session.get(
        Organization, actor.user.organization_id, populate_existing=True, with_for_update={'key_share': True}
    )
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    if required and not current_settings().single_sign_on_configured:
        raise NotConfigured('Single sign-on is not configured on this server (CXT_OIDC_ISSUER).')
    if organization is None:
        raise NotFound('Your organization no longer exists.')
    if organization.require_single_sign_on != required:
        organization.require_single_sign_on = required
        session.add(organization)
        record_event(
            session=session,
            organization_id=organization.id,
            actor=actor.user,
            action=AuditAction.SSO_REQUIRED if required else AuditAction.SSO_NOT_REQUIRED,
            target=organization.name,
            ip=actor.ip,
        )
    return required


def required_for(*, session: Session, organization_id: int) -> bool:
    organization = session.get(Organization, organization_id)
    return organization is not None and organization.require_single_sign_on


def password_refused(*, session: Session, user: User) -> bool:
    """The one rule every password path asks (sign-in, password reset): a member whose organization requires single
    sign-on does not use a password here. Admins keep theirs, as the way back in when the provider is down; so does
    everyone while single sign-on is not configured on the server (nobody is shut out by a configuration change)."""
    if user.role == Role.ADMIN or not current_settings().single_sign_on_configured:
        return False
    return required_for(session=session, organization_id=user.organization_id)


def password_sign_in_refusal(*, session: Session, user_id: int, ip: str | None) -> str | None:
    """After a right password, before the session: the refusal to show a member who must use single sign-on (audited),
    or None. An admin's password sign-in while single sign-on is required is the way back in when the provider is
    down: it is let through, audited and mailed to the admins as a security alert."""
    user = session.get(User, user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        return None
    if password_refused(session=session, user=user):
        record_event(
            session=session,
            organization_id=user.organization_id,
            actor=user,
            action=AuditAction.SSO_PASSWORD_REFUSED,
            target=user.email,
            ip=ip,
        )
        return password_refusal_message()
    if user.role == Role.ADMIN and current_settings().single_sign_on_configured:
        if required_for(session=session, organization_id=user.organization_id):
            record_event(
                session=session,
                organization_id=user.organization_id,
                actor=user,
                action=AuditAction.SSO_BREAK_GLASS,
                target=user.email,
                ip=ip,
            )
    return None


def password_refusal_message() -> str:
    name = provider_name()
    return f'Your organization signs in with {name} only. Use Sign in with {name}.'


def refuse_password_reset(*, session: Session, user: User) -> None:
    """A password reset for a member who must use single sign-on is refused (the same rule as sign-in)."""
    if password_refused(session=session, user=user):
        raise PermissionDenied(password_refusal_message())


# --- inside ----------------------------------------------------------------------------------------------------


def _verified_email(identity: ProviderIdentity) -> str | Refusal:
    if not identity.email:
        return Refusal(f'{provider_name()} did not tell us your email address. Ask an admin for help.', 'no email')
    if not identity.email_verified:
        return Refusal(
            f'{provider_name()} has not verified {identity.email} as yours, so it cannot sign you in here. '
            'Verify it there first.',
            'email not verified',
        )
    try:
        return auth.normalize_email(identity.email)
    except ValidationFailed:
        return Refusal(no_account(identity.email), 'unusable email')


def _name_for(identity: ProviderIdentity, email: str) -> str:
    try:
        return auth.validate_name(identity.name or '')
    except ValidationFailed:
        return email.partition('@')[0][: auth.NAME_MAX_LENGTH]


def _accept_invitation(
    *, session: Session, identity: ProviderIdentity, email: str, name: str, token: str, ip: str | None
) -> User | Refusal:
    view = invitations.lookup_invitation(session=session, token=token)
    if view.state.value != 'valid':
        return _refused(session=session, refusal=Refusal(view.message, f'invitation {view.state}'), email=email, ip=ip)
    if view.email != email:
        refusal = Refusal(
            f'This invitation is for {view.email}, but you signed in to {provider_name()} as {email}. '
            f'Sign in there as {view.email}.',
            'invitation for another email',
        )
        return _refused(session=session, refusal=refusal, email=email, ip=ip)
    taken = session.exec(select(User.id).where(User.email == email, User.status == UserStatus.ACTIVE)).first()
    if taken is not None:
        refusal = Refusal(f'{email} already has an account. Use Sign in with {provider_name()}.', 'already a member')
        return _refused(session=session, refusal=refusal, email=email, ip=ip)
    try:
        user = invitations.accept_invitation(session=session, token=token, name=name, password_hash='', ip=ip)
    except ValidationFailed as refused:
        return _refused(session=session, refusal=Refusal(str(refused), 'invitation refused'), email=email, ip=ip)
    return _link_and_sign_in(session=session, identity=identity, user=user, ip=ip, new=True)


def _link_and_sign_in(
    *, session: Session, identity: ProviderIdentity, user: User, ip: str | None, new: bool = False
) -> User | Refusal:
    assert user.id is not None
    existing = session.exec(select(SingleSignOnLink).where(SingleSignOnLink.user_id == user.id)).first()
    if existing is not None and (existing.issuer, existing.subject) != (identity.issuer, identity.subject):
        refusal = Refusal(
            f'{user.email} is already linked to another account at {provider_name()}. Ask an admin for help.',
            'linked to another provider account',
        )
        return _refused(session=session, refusal=refusal, email=user.email, ip=ip, organization_id=user.organization_id)
    stale = session.exec(
        select(SingleSignOnLink).where(
            SingleSignOnLink.issuer == identity.issuer,
            SingleSignOnLink.subject == identity.subject,
            col(SingleSignOnLink.user_id) != user.id,
        )
    ).first()
    if stale is not None:  # the provider account was linked to a member since removed: it now belongs here
        session.delete(stale)
        session.flush()
    if existing is None:
        existing = SingleSignOnLink(user_id=user.id, issuer=identity.issuer, subject=identity.subject)
        session.add(existing)
        if not new:
            record_event(
                session=session,
                organization_id=user.organization_id,
                actor=user,
                action=AuditAction.SSO_LINKED,
                target=user.email,
                ip=ip,
            )
    return _signed_in(session=session, user=user, link=existing, ip=ip)


def _signed_in(*, session: Session, user: User, link: SingleSignOnLink | None, ip: str | None) -> User:
    if link is not None:
        link.last_used_at = utcnow()
        session.add(link)
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.SSO_SIGN_IN_SUCCEEDED,
        ip=ip,
    )
    session.flush()
    return user


def _refused(
    *, session: Session, refusal: Refusal, email: str, ip: str | None, organization_id: int | None = None
) -> Refusal:
    """`refusal`, with who it was about (recorded by the caller, see `record_refusal`)."""
    return Refusal(refusal.message, refusal.reason, email=email, organization_id=organization_id)


def _organization_for_domains(*, session: Session) -> Organization | None:
    """Where people from an allowed domain join: the organization set up first (an instance serves one team)."""
    return session.exec(select(Organization).order_by(col(Organization.id)).limit(1)).first()
