from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import DateTime, String, Table, inspect
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def stored_id(row: _Row) -> int:
    """The primary key of a row read from or flushed to the database (SQLModel types it `int | None` because a
    row built in Python has none until the flush)."""
    if row.id is None:
        raise RuntimeError(f'{type(row).__name__} has no id: it has not been flushed to the database')
    return row.id


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a table model, for prebuilt Core statements (SQLModel sets `__table__` on the class
    but does not declare it)."""
    table = inspect(model).local_table
    assert isinstance(table, Table), f'{model.__name__} is not a table model'
    return table


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError('naive datetime given to a UTC column')
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar('E', bound=StrEnum)


class StateText(TypeDecorator[E], Generic[E]):
    """A `StrEnum` stored as its plain text value (a VARCHAR, so adding a state needs no schema change)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: object) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: object) -> E | None:
        return None if value is None else self.enum(value)
