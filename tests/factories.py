"""Small factories with random unique values."""

import secrets
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from models import BrowserSession, Organization, Role, User
from models.base import stored_id, utcnow
from services.acting import Actor
from services.db import write_scope
from services.errors import InvalidCredentials
from services.identity import auth

DEFAULT_PASSWORD = 'correct horse battery'


def random_email(prefix: str = 'user') -> str:
    return f'{prefix}-{secrets.token_hex(4)}@example.com'


def make_organization(session: Session, *, name: str | None = None) -> Organization:
    organization = Organization(name=name or f'Org {secrets.token_hex(3)}')
    session.add(organization)
    session.flush()
    return organization


def make_user(
    session: Session,
    *,
    organization: Organization,
    role: Role = Role.ADMIN,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    name: str | None = None,
) -> User:
    user = User(
        organization_id=stored_id(organization),
        email=email or random_email(role.value),
        name=name or 'Test Person',
        password_hash=auth.hash_password(password),
        role=role,
    )
    session.add(user)
    session.flush()
    return user


def acting(session: Session, user: User, *, password_minutes_ago: float | None = 0, ip: str | None = None) -> Actor:
    """`user` acting from a browser session of their own, signed in now, where they last typed their password
    `password_minutes_ago` (None: never since signing in)."""
    now = utcnow()
    row = BrowserSession(
        user_id=stored_id(user),
        token_hash=secrets.token_hex(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=14),
        password_confirmed_at=None if password_minutes_ago is None else now - timedelta(minutes=password_minutes_ago),
    )
    session.add(row)
    session.flush()
    return Actor(user=user, ip=ip, session_id=stored_id(row))


def signed_in_actor(user: User, *, password_minutes_ago: float | None = 0, ip: str | None = None) -> Actor:
    """`acting` in its own transaction, for a use case that opens its own (or runs in a read transaction)."""
    with write_scope() as session:
        return acting(session, user, password_minutes_ago=password_minutes_ago, ip=ip)


def sign_in(email: str, password: str, ip: str | None = '127.0.0.1') -> User:
    """The three sign-in steps in the order the sign-in page runs them (bcrypt between the transactions)."""
    with write_scope() as session:
        attempt = auth.begin_sign_in(session=session, email=email, ip=ip)
    password_ok = auth.check_attempt_password(attempt, password)
    with write_scope() as session:
        user = auth.finish_sign_in(session=session, attempt=attempt, password_ok=password_ok)
    if user is None:
        raise InvalidCredentials()
    return user


def now() -> datetime:
    return datetime.now(UTC)
