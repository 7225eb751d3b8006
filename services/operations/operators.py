"""What the person running the server can do from its command line (`uv run main.py --help`), each audited.

They hold the machine, so no password is asked; what they get is a one-time reset link, never a password.
"""

from sqlmodel import Session, select

from models import AuditAction, Organization, Role, User, UserStatus
from services import audit
from services.audit import record_event
from services.db import lock_account
from services.errors import NotFound, ValidationFailed
from services.identity import attempts, auth, password_reset


def unlock(*, session: Session, email: str) -> int:
    """Let an account sign in again at once after too many wrong passwords; returns how many failures it had."""
    email = auth.normalize_email(email)
    forgotten = attempts.unlock(session=session, email=email)
    organization_id = session.exec(select(User.organization_id).where(User.email == email)).first()
    record_event(
        session=session,
        organization_id=organization_id,
        actor=None,
        actor_email=audit.OPERATOR,
        action=AuditAction.LOGIN_UNLOCKED,
        target=email,
    )
    return forgotten


def reset_link(*, session: Session, email: str) -> str:
    """A one-time link (1 hour) to choose a new password, for an instance without a mail server."""
    email = auth.normalize_email(email)
    issued = password_reset.request_reset(session=session, email=email, requested_by=audit.OPERATOR)
    if issued is None:
        raise NotFound(f'No active account uses {email}, or it asked for 5 links within the hour already.')
    return issued.link


def create_admin(*, session: Session, email: str, name: str, organization_id: int | None = None) -> str:
    """Make `email` an admin of the organization (the only one, unless `organization_id` says which): an existing
    member is promoted and brought back if removed, anyone else gets a new account. Returns a one-time link for them
    to choose their password."""
    organization = _organization(session=session, organization_id=organization_id)
    email = auth.normalize_email(email)
    lock_account(session=session, email=email)
    user = session.exec(select(User).where(User.email == email)).first()
    if user is not None and user.organization_id != organization.id:
        raise ValidationFailed(f'{email} belongs to another organization.')
    if user is None:
        # No password works until the link is used: '!' is no bcrypt hash, so every check of it fails.
        user = User(organization_id=organization.id or 0, email=email, name=auth.validate_name(name), password_hash='!')
    user.role, user.status = Role.ADMIN, UserStatus.ACTIVE
    session.add(user)
    session.flush()
    record_event(
        session=session,
        organization_id=organization.id,
        actor=None,
        actor_email=audit.OPERATOR,
        action=AuditAction.ADMIN_CREATED,
        target=email,
    )
    return reset_link(session=session, email=email)


def _organization(*, session: Session, organization_id: int | None) -> Organization:
    if organization_id is not None:
        organization = session.get(Organization, organization_id)
        if organization is None:
            raise NotFound(f'There is no organization {organization_id}.')
        return organization
    organizations = session.exec(select(Organization)).all()
    if not organizations:
        raise NotFound('This instance has no organization yet: open /setup in a browser instead.')
    if len(organizations) > 1:
        listed = ', '.join(f'{organization.id} ({organization.name})' for organization in organizations)
        raise ValidationFailed(f'Several organizations exist; name one with --organization: {listed}')
    return organizations[0]
