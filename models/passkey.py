"""Passkeys: WebAuthn credentials a person signs in with instead of a password and a code."""

from datetime import datetime
from typing import ClassVar

from sqlalchemy import LargeBinary
from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class Passkey(SQLModel, table=True):
    """One registered passkey. The authenticator keeps the private key; this row keeps its public key (COSE), the
    credential's id (base64url, how the browser names it at sign-in), the last signature counter the authenticator
    reported (a counter that fails to grow points at a cloned authenticator) and the user handle given at
    registration, which a discoverable credential returns at sign-in."""

    __tablename__: ClassVar[str] = 'passkey'

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key='user.id', index=True, ondelete='CASCADE')
    name: str = Field(max_length=100)
    credential_id: str = Field(max_length=1400, unique=True)  # up to 1,023 bytes, base64url
    public_key: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))
    sign_count: int = Field(default=0)
    user_handle: str = Field(max_length=100)
    transports: str | None = Field(default=None, max_length=200)  # comma-separated hints for the browser
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
