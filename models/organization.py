from datetime import datetime

from sqlalchemy import Boolean, false
from sqlmodel import Column, Field, SQLModel

from models.base import StateText, UTCDateTime, utcnow
from models.billing import SubscriptionStatus


class Organization(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    kustomer_subdomain: str | None = Field(default=None, max_length=63, index=True)
    kustomer_sandbox_subdomain: str | None = Field(default=None, max_length=63, index=True)
    stripe_customer_id: str | None = Field(default=None, max_length=255, unique=True)
    stripe_subscription_id: str | None = Field(default=None, max_length=255)
    subscription_status: SubscriptionStatus = Field(
        default=SubscriptionStatus.NONE, sa_column=Column(StateText(SubscriptionStatus, 32), nullable=False)
    )
    subscription_plan: str | None = Field(default=None, max_length=255)
    current_period_end: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # Every member signs in with a second factor; one without is sent to set it up at their next sign-in.
    require_two_factor: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False, server_default=false()))
    # Members sign in with single sign-on only (no password, no password reset); admins keep their password as a way
    # back in when the provider is down, and each such sign-in is audited and mailed to the admins.
    require_single_sign_on: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )
