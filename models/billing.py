from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class SubscriptionStatus(StrEnum):
    """An organization's subscription as Stripe last told it (Stripe's own words, stored as they are), or NONE."""

    NONE = 'none'  # no subscription was ever started
    INCOMPLETE = 'incomplete'
    INCOMPLETE_EXPIRED = 'incomplete_expired'
    TRIALING = 'trialing'
    ACTIVE = 'active'
    PAST_DUE = 'past_due'
    CANCELED = 'canceled'
    UNPAID = 'unpaid'
    PAUSED = 'paused'


class StripeEvent(SQLModel, table=True):
    """A Stripe webhook event already handled; a replay of the same id is a no-op."""

    __tablename__: ClassVar[str] = 'stripe_event'

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
