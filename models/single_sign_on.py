from datetime import datetime
from typing import ClassVar

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class SingleSignOnLink(SQLModel, table=True):
    """A person's account at the identity provider: once linked, single sign-on finds them by the provider's `sub`
    (which never changes), not by their email (which may)."""

    __tablename__: ClassVar[str] = 'single_sign_on_link'
    __table_args__ = (UniqueConstraint('issuer', 'subject'),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key='user.id', unique=True, ondelete='CASCADE')
    issuer: str = Field(max_length=500)
    subject: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class SingleSignOnState(SQLModel, table=True):
    """One started round trip to the provider (its state, PKCE verifier and nonce, as Authlib keeps them): stored on
    the server so that every process sees it and a callback can use it once; the browser holds only a marker."""

    __tablename__: ClassVar[str] = 'single_sign_on_state'

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True)
    value: str = Field(sa_column=Column(Text(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
