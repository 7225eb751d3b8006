from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import Boolean, Index, true
from sqlmodel import Column, Field, SQLModel

from models.base import StateText, UTCDateTime, utcnow


class Role(StrEnum):
    ADMIN = 'admin'
    MEMBER = 'member'

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self]


_ROLE_LABELS = {Role.ADMIN: 'Admin', Role.MEMBER: 'Member'}


class UserStatus(StrEnum):
    ACTIVE = 'active'
    # The row stays after removal: the audit log points at it, and an invitation can bring it back.
    REMOVED = 'removed'

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]


_STATUS_LABELS = {UserStatus.ACTIVE: 'Active', UserStatus.REMOVED: 'Removed'}


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key='organization.id', index=True, ondelete='CASCADE')
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=100)
    role: Role = Field(default=Role.MEMBER, sa_column=Column(StateText(Role, 16), nullable=False))
    status: UserStatus = Field(default=UserStatus.ACTIVE, sa_column=Column(StateText(UserStatus, 16), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # Security alerts by email (key revealed or rotated, admins added or removed): each person can turn theirs off.
    alerts_enabled: bool = Field(default=True, sa_column=Column(Boolean(), nullable=False, server_default=true()))


class LoginFailure(SQLModel, table=True):
    """One password attempt that has not (yet) succeeded: written before bcrypt runs, deleted if it succeeds, so
    concurrent guesses count at once. Kept for the lockout windows, pruned after a day."""

    __tablename__: ClassVar[str] = 'login_failure'
    __table_args__ = (Index('ix_login_failure_ip_created_at', 'ip', 'created_at'),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, index=True)
    ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))


class PasswordResetToken(SQLModel, table=True):
    __tablename__: ClassVar[str] = 'password_reset_token'

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key='user.id', index=True, ondelete='CASCADE')
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
