from datetime import datetime
from typing import ClassVar

from sqlalchemy import Boolean, false
from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class BrowserSession(SQLModel, table=True):
    """One signed-in browser. Its cookie carries a random token; only the token's hash is stored here.

    A sign-in happens over the page socket, which cannot set a cookie: the row starts with a one-time handoff code
    (hashed, valid for a minute) that `/session/start` trades for the token and the cookie. Deleting the row ends
    the session in every process at once.
    """

    __tablename__: ClassVar[str] = 'browser_session'

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key='user.id', index=True, ondelete='CASCADE')
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    handoff_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    password_confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    # Signed in through the identity provider, which owns the second factor: this app asks for none of its own.
    single_sign_on: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False, server_default=false()))
