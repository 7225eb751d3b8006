from datetime import datetime
from typing import ClassVar

from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class StripeEvent(SQLModel, table=True):
    """A Stripe webhook event already handled; a replay of the same id is a no-op."""

    __tablename__: ClassVar[str] = 'stripe_event'

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
