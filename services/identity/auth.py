"""Accounts: first-run setup, passwords, sign-in with lockout, and the session check.

bcrypt is slow on purpose, so it never runs inside a transaction: sign-in is three steps (`begin_sign_in` reads,
`check_sign_in_password` hashes, `finish_sign_in` writes) and new passwords are hashed (`new_password_hash`) before
the transaction that stores them.
"""

import os
import threading
from dataclasses import dataclass
from functools import cache

import bcrypt
import email_validator
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, select

from models import AuditAction, Organization, Role, User, UserStatus
from services import metrics
from services.audit import record_event
from services.db import lock
from services.errors import InvalidCredentials, PermissionDenied, ValidationFailed
from services.identity import attempts, code_lock, sessions, two_factor
from services.permissions import require_admin

BCRYPT_ROUNDS = 12
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_BYTES = 72  # bcrypt ignores anything past 72 bytes; refuse rather than silently truncate
EMAIL_MAX_LENGTH = 254  # the longest address SMTP can deliver to (RFC 5321)
NAME_MAX_LENGTH = 100

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


# Self-hosted teams run mail on internal and reserved domains (`ops@corp.local`, `admin@acme.test`): only the syntax is
# checked. email-validator documents this module-level list as the way to allow such names; `.invalid` and `.onion`
# stay refused, and so does a domain without a dot.
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES if name in {'invalid', 'onion'}
]


def normalize_email(raw: str, *, field: str = 'email') -> str:
    """Syntax-checked, lower-cased email address (no deliverability lookups)."""
    address = (raw or '').strip()
    if len(address) > EMAIL_MAX_LENGTH:
        raise ValidationFailed(f'Use at most {EMAIL_MAX_LENGTH} characters', field=field)
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as refused:
        raise ValidationFailed(f'Enter a valid email address. {refused}', field=field) from None
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
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(f'Use at most {NAME_MAX_LENGTH} characters', field=field)
    return name


def setup_needed(*, session: Session) -> bool:
    """True while no account exists (the setup page is open only then)."""
    return session.exec(select(User.id).limit(1)).first() is None


def validate_first_admin(*, organization_name: str, name: str, email: str, password: str) -> None:
    """Every field of the setup form (no database, no bcrypt); every invalid one is reported at once, in the order the
    form shows them."""
    errors: dict[str, str] = {}
    checks = (
        lambda: validate_name(organization_name, field='organization', what='the organization name'),
        lambda: validate_name(name),
        lambda: normalize_email(email),
        lambda: validate_password(password),
    )
    for check in checks:
        try:
            check()
        except ValidationFailed as error:
            for field, message in error.errors.items():
                errors.setdefault(field or '', message)
    if errors:
        raise ValidationFailed.for_fields(errors)


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
    lock(session=session, name='first-run')  # two setups at once: the second finds the first admin
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
class PasswordAttempt:
    """A password attempt that has claimed its place (see `services/identity/attempts.py`): the normalized email, the
    client
    address, the account's id and hash (empty when there is no such account) and the claim."""

    email: str
    ip: str | None
    user_id: int | None
    password_hash: str
    claim_id: int


def begin_sign_in(*, session: Session, email: str, ip: str | None = None) -> PasswordAttempt:
    """Sign-in, step 1 (write, before bcrypt): refuse a locked account or address, count this attempt, look the
    account up."""
    email = (email or '').strip().lower()
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidCredentials()  # no account has such an address: refused before anything is counted or stored
    with metrics.counting_lockout(metrics.SignInMethod.PASSWORD):
        claim_id = attempts.claim(session=session, email=email, ip=ip)
    user = session.exec(select(User).where(User.email == email, User.status == UserStatus.ACTIVE)).first()
    return PasswordAttempt(
        email=email,
        ip=ip,
        user_id=user.id if user else None,
        password_hash=user.password_hash if user else '',
        claim_id=claim_id,
    )


def begin_password_confirmation(*, session: Session, user: User, ip: str | None = None) -> PasswordAttempt:
    """Re-checking the signed-in user's password before a sensitive action, step 1: throttled like a sign-in."""
    claim_id = attempts.claim(session=session, email=user.email, ip=ip)
    stored = session.get(User, user.id)
    active = stored is not None and stored.status == UserStatus.ACTIVE
    return PasswordAttempt(
        email=user.email,
        ip=ip,
        user_id=user.id if active else None,
        password_hash=stored.password_hash if stored is not None and active else '',
        claim_id=claim_id,
    )


def check_attempt_password(attempt: PasswordAttempt, password: str) -> bool:
    """Step 2: bcrypt. Slow: call off the loop, outside any transaction."""
    # An unknown email is checked against a dummy hash so both failures take the same time.
    matches = check_password(password, attempt.password_hash or _dummy_hash(BCRYPT_ROUNDS))
    return matches and attempt.user_id is not None


def finish_sign_in(*, session: Session, attempt: PasswordAttempt, password_ok: bool) -> User | None:
    """Sign-in, step 3 (write): the signed-in user, or None after recording the failure (which must be committed,
    so the caller raises `InvalidCredentials` once the transaction has ended). When the user has a second factor (or
    must set one up), the password is only the first step: the caller checks `two_factor.password_is_enough`."""
    user = session.get(User, attempt.user_id) if password_ok and attempt.user_id is not None else None
    if user is None or user.status != UserStatus.ACTIVE:
        known = session.exec(select(User.organization_id).where(User.email == attempt.email)).first()
        record_event(
            session=session,
            organization_id=known,
            actor=None,
            actor_email=attempt.email,
            action=AuditAction.LOGIN_FAILED,
            target=attempt.email,
            ip=attempt.ip,
        )
        attempts.prune(session=session)
        return None
    attempts.succeeded(session=session, claim_id=attempt.claim_id, email=attempt.email, ip=attempt.ip)
    if not two_factor.password_is_enough(session=session, user=user):
        return user  # not signed in yet: the code step (`two_factor.begin_pending`) records the sign-in
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.LOGIN_SUCCEEDED,
        ip=attempt.ip,
    )
    return user


def finish_password_confirmation(*, session: Session, attempt: PasswordAttempt, password_ok: bool, user: User) -> bool:
    """Step 3 (write): True for the right password; a wrong one stays counted and is audited."""
    if password_ok:
        attempts.succeeded(session=session, claim_id=attempt.claim_id, email=attempt.email, ip=attempt.ip)
        return True
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.PASSWORD_CONFIRM_FAILED,
        target=user.email,
        ip=attempt.ip,
    )
    return False


def change_password(
    *, session: Session, user: User, password_hash: str, keep_session_id: int | None, ip: str | None = None
) -> None:
    """Store a new password (hashed by `new_password_hash`, after the current one was confirmed); every other
    session of the user ends."""
    stored = session.get(User, user.id)
    if stored is None or stored.status != UserStatus.ACTIVE:
        raise PermissionDenied('Your account is no longer active.')
    stored.password_hash = password_hash
    session.add(stored)
    assert stored.id is not None
    sessions.end_all(session=session, user_id=stored.id, keep_session_id=keep_session_id)
    code_lock.clear(session=session, user_id=stored.id)  # wrong codes went with the old password
    record_event(
        session=session,
        organization_id=stored.organization_id,
        actor=stored,
        action=AuditAction.PASSWORD_CHANGED,
        target=stored.email,
        ip=ip,
    )


def unlock(*, session: Session, actor: User, email: str, ip: str | None = None) -> int:
    """Let a locked member of the actor's organization sign in again at once (admins only); audited."""
    require_admin(session=session, actor=actor)
    member = session.exec(
        select(User).where(User.email == email.strip().lower(), User.organization_id == actor.organization_id)
    ).first()
    if member is None:
        raise PermissionDenied('That person is not on your team.')
    forgotten = attempts.unlock(session=session, email=member.email)
    record_event(
        session=session,
        organization_id=actor.organization_id,
        actor=actor,
        action=AuditAction.LOGIN_UNLOCKED,
        target=member.email,
        ip=ip,
    )
    return forgotten
