from datetime import datetime

from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class Invitation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key='organization.id', index=True, ondelete='CASCADE')
    email: str = Field(max_length=320, index=True)
    role: str = Field(max_length=16)
    invited_by_id: int | None = Field(default=None, foreign_key='user.id', ondelete='SET NULL')
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # 'sent', 'failed' or 'not_emailed' (shown as Sent / Email failed / Not emailed)
    delivery_status: str = Field(default='not_emailed', max_length=16)
    last_error: str | None = Field(default=None, max_length=1000)
