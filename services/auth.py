"""Accounts: first-run setup, passwords, sign-in with lockout, and the session check.

bcrypt is slow on purpose, so it never runs inside a transaction: sign-in is three steps (`begin_sign_in` reads,
`check_sign_in_password` hashes, `finish_sign_in` writes) and new passwords are hashed (`new_password_hash`) before
the transaction that stores them.
"""

import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import bcrypt
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, delete, select

from models import AuditAction, LoginFailure, Organization, Role, User, UserStatus
from models.base import utcnow
from services.audit import record_event
from services.errors import LoginLocked, PermissionDenied, ValidationFailed

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


def new_password_hash(password: str) -> str:
    """Check a chosen password against the rules, then hash it. Slow (bcrypt): off the loop, outside a transaction."""
    validate_password(password)
    return hash_password(password)


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


def validate_first_admin(*, organization_name: str, name: str, email: str, password: str) -> None:
    """Every field of the setup form, in the order the form shows them (no database, no bcrypt)."""
    validate_name(organization_name, field='organization', what='the organization name')
    validate_name(name)
    normalize_email(email)
    validate_password(password)


def create_first_admin(
    *,
    session: Session,
    organization_name: str,
    name: str,
    email: str,
    password_hash: str,
    ip: str | None = None,
) -> User:
    """Create the organization and its first admin (password hashed by `new_password_hash`); refused once any
    account exists."""
    organization_name = validate_name(organization_name, field='organization', what='the organization name')
    name = validate_name(name)
    email = normalize_email(email)
    if not setup_needed(session=session):
        raise PermissionDenied('Setup is already complete. Sign in instead.')
    organization = Organization(name=organization_name)
    session.add(organization)
    session.flush()
    assert organization.id is not None
    user = User(organization_id=organization.id, email=email, name=name, password_hash=password_hash, role=Role.ADMIN)
    session.add(user)
    session.flush()
    record_event(
        session=session,
        organization_id=organization.id,
        actor=user,
        action=AuditAction.ORGANIZATION_CREATED,
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


@dataclass(frozen=True)
class SignInAttempt:
    """What `begin_sign_in` read: the normalized email, and the account's id and hash (a dummy hash if none)."""

    email: str
    user_id: int | None
    password_hash: str


def begin_sign_in(*, session: Session, email: str) -> SignInAttempt:
    """Sign-in, step 1 (read): refuse a locked email, look the account up."""
    email = (email or '').strip().lower()
    state = lock_state(session=session, email=email)
    if state.locked:
        raise LoginLocked(state.minutes_left)
    user = session.exec(select(User).where(User.email == email, User.status == UserStatus.ACTIVE)).first()
    if user is None:
        return SignInAttempt(email=email, user_id=None, password_hash='')
    return SignInAttempt(email=email, user_id=user.id, password_hash=user.password_hash)


def check_sign_in_password(attempt: SignInAttempt, password: str) -> bool:
    """Sign-in, step 2: bcrypt. Slow: call off the loop, outside any transaction."""
    # An unknown email is checked against a dummy hash so both failures take the same time.
    matches = check_password(password, attempt.password_hash or _dummy_hash(BCRYPT_ROUNDS))
    return matches and attempt.user_id is not None


def finish_sign_in(
    *, session: Session, attempt: SignInAttempt, password_ok: bool, ip: str | None = None
) -> User | None:
    """Sign-in, step 3 (write): the signed-in user, or None after recording the failure (which must be committed,
    so the caller raises `InvalidCredentials` once the transaction has ended)."""
    user = session.get(User, attempt.user_id) if password_ok and attempt.user_id is not None else None
    if user is None or user.status != UserStatus.ACTIVE:
        session.add(LoginFailure(email=attempt.email))
        known = session.exec(select(User.organization_id).where(User.email == attempt.email)).first()
        record_event(
            session=session,
            organization_id=known,
            actor=None,
            actor_email=attempt.email,
            action=AuditAction.LOGIN_FAILED,
            target=attempt.email,
            ip=ip,
        )
        return None
    session.exec(delete(LoginFailure).where(col(LoginFailure.email) == attempt.email))
    record_event(
        session=session, organization_id=user.organization_id, actor=user, action=AuditAction.LOGIN_SUCCEEDED, ip=ip
    )
    return user


def stored_password_hash(*, session: Session, user: User) -> str | None:
    """The signed-in user's current password hash, for re-checking it before a sensitive action (read step)."""
    return session.exec(select(User.password_hash).where(User.id == user.id, User.status == UserStatus.ACTIVE)).first()
