"""A second factor at sign-in: the authenticator app (TOTP), its recovery codes, and sign-ins waiting for a code."""

from datetime import datetime
from typing import ClassVar

from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class AuthenticatorApp(SQLModel, table=True):
    """A user's authenticator app: its TOTP secret, encrypted with the server secret. While `confirmed_at` is empty
    the app is being set up (the QR code is shown, no code has been entered yet) and sign-in does not ask for it.

    `last_used_step` is the 30-second time step of the last accepted code: a code is accepted once, never replayed
    inside its window."""

    __tablename__: ClassVar[str] = 'authenticator_app'

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key='user.id', unique=True, ondelete='CASCADE')
    secret_encrypted: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_used_step: int | None = Field(default=None)


class RecoveryCode(SQLModel, table=True):
    """One single-use recovery code; only its keyed hash (HMAC under a key derived from the server secret) is kept."""

    __tablename__: ClassVar[str] = 'recovery_code'

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key='user.id', index=True, ondelete='CASCADE')
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class PendingSignIn(SQLModel, table=True):
    """A sign-in whose password was right and whose second step (a code, or setting up the app when the organization
    requires one) is still to come. No session exists yet. Like a session it starts with a one-time handoff code that
    `/login/code/start` trades for a random token in a cookie of its own, so it belongs to the browser that typed the
    password; only hashes are stored. Valid for 10 minutes."""

    __tablename__: ClassVar[str] = 'pending_sign_in'

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key='user.id', index=True, ondelete='CASCADE')
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    handoff_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


class CodeLock(SQLModel, table=True):
    """Wrong codes an account's second step has seen (`services/identity/code_lock.py`): counted in a window of 30 days
    from
    the first one; at the limit the codes are locked (`locked_at`) until the password is reset or an admin resets the
    second factor. `owner_told_at` is when the owner was mailed about this window's failures."""

    __tablename__: ClassVar[str] = 'code_lock'

    user_id: int = Field(foreign_key='user.id', primary_key=True, ondelete='CASCADE')
    failures: int = Field(default=0)
    window_started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    owner_told_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    locked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
