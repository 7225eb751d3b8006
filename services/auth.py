"""Accounts: first-run setup, passwords, sign-in with lockout, and the session check."""

import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import bcrypt
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, delete, select

from models import LoginFailure, Organization, Role, User
from models.base import utcnow
from services.audit import record_event
from services.errors import InvalidCredentials, LoginLocked, PermissionDenied, ValidationFailed

BCRYPT_ROUNDS = 12
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_BYTES = 72  # bcrypt ignores anything past 72 bytes; refuse rather than silently truncate
LOCKOUT_ATTEMPTS = 5
LOCKOUT_WINDOW = timedelta(minutes=15)

# bcrypt saturates a core per call; leave one free so pages stay responsive during a burst of sign-ins.
_bcrypt_slots = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))


def hash_password(password: str) -> str:
    with _bcrypt_slots:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


def check_password(password: str, password_hash: str) -> bool:
    with _bcrypt_slots:
        try:
            return bcrypt.checkpw(password.encode()[:PASSWORD_MAX_BYTES], password_hash.encode())
        except ValueError:
            return False


@cache
def _dummy_hash(rounds: int) -> str:
    return bcrypt.hashpw(b'not-a-real-password', bcrypt.gensalt(rounds=rounds)).decode()


def normalize_email(raw: str, *, field: str = 'email') -> str:
    """Syntax-checked, lower-cased email address (no deliverability lookups)."""
    try:
        result = validate_email((raw or '').strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ValidationFailed('Enter a valid email address', field=field) from None
    return result.normalized.lower()


def validate_password(password: str) -> None:
    if len(password or '') < PASSWORD_MIN_LENGTH:
        raise ValidationFailed(f'Use at least {PASSWORD_MIN_LENGTH} characters', field='password')
    if len(password.encode()) > PASSWORD_MAX_BYTES:
        raise ValidationFailed(f'Use at most {PASSWORD_MAX_BYTES} bytes', field='password')


def validate_name(raw: str, *, field: str = 'name', what: str = 'your name') -> str:
    name = ' '.join((raw or '').split())
    if not name:
        raise ValidationFailed(f'Enter {what}', field=field)
    if len(name) > 200:
        raise ValidationFailed('Use at most 200 characters', field=field)
    return name


def setup_needed(*, session: Session) -> bool:
    """True while no account exists (the setup page is open only then)."""
    return session.exec(select(User.id).limit(1)).first() is None


def create_first_admin(
    *,
    session: Session,
    organization_name: str,
    name: str,
    email: str,
    password: str,
    ip: str | None = None,
) -> User:
    """Create the organization and its first admin; refused once any account exists."""
    organization_name = validate_name(organization_name, field='organization', what='the organization name')
    name = validate_name(name)
    email = normalize_email(email)
    validate_password(password)
    password_hash = hash_password(password)
    if not setup_needed(session=session):
        raise PermissionDenied('Setup is already complete. Sign in instead.')
    organization = Organization(name=organization_name)
    session.add(organization)
    session.flush()
    user = User(organization_id=organization.id, email=email, name=name, password_hash=password_hash, role=Role.ADMIN)
    session.add(user)
    session.flush()
    record_event(
        session=session,
        organization_id=organization.id,
        actor=user,
        action='organization.created',
        target=organization_name,
        ip=ip,
    )
    return user


@dataclass(frozen=True)
class LockState:
    locked: bool
    minutes_left: int = 0


def lock_state(*, session: Session, email: str) -> LockState:
    now = utcnow()
    failures = session.exec(
        select(LoginFailure.created_at)
        .where(LoginFailure.email == email, col(LoginFailure.created_at) > now - LOCKOUT_WINDOW)
        .order_by(col(LoginFailure.created_at).desc())
    ).all()
    if len(failures) < LOCKOUT_ATTEMPTS:
        return LockState(locked=False)
    unlock_at = failures[0] + LOCKOUT_WINDOW
    seconds_left = (unlock_at - now).total_seconds()
    return LockState(locked=True, minutes_left=max(1, int(-(-seconds_left // 60))))


def authenticate(*, session: Session, email: str, password: str, ip: str | None = None) -> User:
    """The user for these credentials; raises InvalidCredentials or LoginLocked. Slow (bcrypt): call off the loop."""
    email = (email or '').strip().lower()
    state = lock_state(session=session, email=email)
    if state.locked:
        raise LoginLocked(state.minutes_left)
    user = session.exec(select(User).where(User.email == email, User.status == 'active')).first()
    # End the read transaction: bcrypt must not run while SQLite's write lock is held.
    session.commit()
    # An unknown email is checked against a dummy hash so both failures take the same time.
    password_ok = check_password(password, user.password_hash if user else _dummy_hash(BCRYPT_ROUNDS))
    if user is None or not password_ok:
        session.add(LoginFailure(email=email))
        record_event(
            session=session,
            organization_id=user.organization_id if user else None,
            actor=None,
            actor_email=email,
            action='login.failed',
            target=email,
            ip=ip,
        )
        session.commit()
        raise InvalidCredentials()
    session.exec(delete(LoginFailure).where(col(LoginFailure.email) == email))
    record_event(session=session, organization_id=user.organization_id, actor=user, action='login.succeeded', ip=ip)
    return user


def confirm_password(*, session: Session, user: User, password: str) -> bool:
    """Re-check the signed-in user's password for a sensitive action. Slow (bcrypt): call off the loop."""
    stored = session.exec(select(User.password_hash).where(User.id == user.id)).first()
    session.commit()
    return stored is not None and check_password(password, stored)


def load_session_user(*, session: Session, user_id: int | None, session_version: int | None) -> User | None:
    """The user a browser session belongs to, or None once that session has been ended."""
    if user_id is None or session_version is None:
        return None
    user = session.get(User, user_id)
    if user is None or user.status != 'active' or user.session_version != session_version:
        return None
    return user
