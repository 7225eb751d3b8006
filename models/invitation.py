from datetime import datetime
from enum import StrEnum

from sqlmodel import Column, Field, SQLModel

from models.base import StateText, UTCDateTime, utcnow
from models.user import Role


class DeliveryStatus(StrEnum):
    """Where an invitation's email stands. `SENDING` lasts from storing it until the mail server answered."""

    SENDING = 'sending'
    SENT = 'sent'
    FAILED = 'failed'
    NOT_EMAILED = 'not_emailed'  # no mail server configured: the admin copies the link

    @property
    def label(self) -> str:
        return _DELIVERY_LABELS[self]


_DELIVERY_LABELS = {
    DeliveryStatus.SENDING: 'Sending…',
    DeliveryStatus.SENT: 'Sent',
    DeliveryStatus.FAILED: 'Email failed',
    DeliveryStatus.NOT_EMAILED: 'Not emailed',
}


class LinkState(StrEnum):
    """The state of a one-time link (an invitation or a password reset)."""

    VALID = 'valid'
    UNKNOWN = 'unknown'
    REVOKED = 'revoked'
    EXPIRED = 'expired'
    USED = 'used'


class Invitation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key='organization.id', index=True, ondelete='CASCADE')
    email: str = Field(max_length=320, index=True)
    role: Role = Field(sa_column=Column(StateText(Role, 16), nullable=False))
    invited_by_id: int | None = Field(default=None, foreign_key='user.id', ondelete='SET NULL')
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    delivery_status: DeliveryStatus = Field(
        default=DeliveryStatus.NOT_EMAILED,
        sa_column=Column(StateText(DeliveryStatus, 16), nullable=False),
    )
    last_error: str | None = Field(default=None, max_length=1000)
    # The process sending its email while `SENDING` (services/events.PROCESS_ID): alive while its heartbeat is fresh.
    sending_owner: str | None = Field(default=None, max_length=64)


class ProcessHeartbeat(SQLModel, table=True):
    """A serving process on a shared database says it is alive (services/operations/send_watch.py): the sends it owns
    are live."""

    __tablename__ = 'process_heartbeat'  # type: ignore[assignment]

    process_id: str = Field(primary_key=True, max_length=64)
    beat_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
