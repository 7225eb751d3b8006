from datetime import datetime
from typing import ClassVar

from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime


class KeyTraffic(SQLModel, table=True):
    """Widget API requests one key received in one clock hour (UTC): accepted, and refused (expired or rotated
    away). Written only by the counters' flush (services/keys/key_traffic.py), which adds to an existing row."""

    __tablename__: ClassVar[str] = 'key_traffic'

    key_id: int = Field(foreign_key='api_key.id', primary_key=True, ondelete='CASCADE')
    hour: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True, index=True))
    accepted: int = Field(default=0)
    refused: int = Field(default=0)
