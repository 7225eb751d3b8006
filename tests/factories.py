"""Small factories with random unique values."""

import secrets
from datetime import UTC, datetime

from sqlmodel import Session

from models import Organization, Role, User
from services import auth

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
        organization_id=organization.id,
        email=email or random_email(role.value),
        name=name or 'Test Person',
        password_hash=auth.hash_password(password),
        role=role,
    )
    session.add(user)
    session.flush()
    return user


def now() -> datetime:
    return datetime.now(UTC)
