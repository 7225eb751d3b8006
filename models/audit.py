from datetime import datetime

from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = 'audit_event'

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int | None = Field(default=None, foreign_key='organization.id', index=True, ondelete='CASCADE')
    actor_id: int | None = Field(default=None, foreign_key='user.id', ondelete='SET NULL')
    actor_email: str | None = Field(default=None, max_length=320)
    action: str = Field(max_length=64)
    target: str | None = Field(default=None, max_length=500)
    ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))
