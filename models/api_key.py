from datetime import datetime
from typing import ClassVar

from sqlalchemy import Index, text
from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    """An organization's widget key. `expires_at` is None for the active key; set once it is rotated away."""

    __tablename__: ClassVar[str] = 'api_key'
    # At most one active key per organization, enforced by the database itself.
    __table_args__ = (
        Index(
            'uq_api_key_one_active',
            'organization_id',
            unique=True,
            sqlite_where=text('expires_at IS NULL'),
            postgresql_where=text('expires_at IS NULL'),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key='organization.id', index=True, ondelete='CASCADE')
    key_hash: str = Field(max_length=64, unique=True)
    encrypted_key: str = Field(max_length=500)
    last4: str = Field(max_length=4)
    created_by_id: int | None = Field(default=None, foreign_key='user.id', ondelete='SET NULL')
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
