"""The organization's audit log: writing events, and reading them a page at a time (the Activity tab, its CSV).

Reading is keyset paging: a page is the `size` events just older (or just newer) than a cursor, the (created_at, id)
of the event at the page's edge, newest first. Every query is one walk along the index on (organization_id,
created_at, id) from the cursor: as quick on the thousandth page as on the first, however long the log grows. The
filters (person, kind, search text) only leave rows out along that walk; nothing is sorted.
"""

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, false, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select, SelectOfScalar

import services.events  # noqa: F401  (registers NOTIFY on the bus: other processes hear of what is recorded)
from models import AuditAction, AuditEvent, User
from models.audit import ACTION_LABELS, action_label
from services import bus, metrics
from services.errors import ValidationFailed
from services.permissions import require_admin

SelectT = TypeVar('SelectT', bound=Select[Any] | SelectOfScalar[Any])

OPERATOR = 'command line'  # who acted, for what an operator does from the command line (nobody is signed in)
PAGE_SIZES = (25, 50)  # what the Activity tab offers
MAX_PAGE_SIZE = 200
SEARCH_MAX_LENGTH = 100
EXPORT_LIMIT = 50_000  # rows in one CSV (~6 MB): enough for years of a team's history, small enough to send at once
EXPORT_BATCH = 1_000
TIME_FORMAT = '%Y-%m-%d %H:%M'
CSV_HEADER = ('When', 'Who', 'What', 'Target', 'Client IP')


def record(*, session: Session, event: bus.Audited) -> AuditEvent:
    """Add `event`'s row to the log in the caller's transaction and emit the event on the bus (one call: a change is
    never saved without its row, and every subscriber hears of it once it commits).

    Why the row is written here and not by a bus subscriber: the row must commit with the change, and callers (and
    tests) hold on to it; written in this plain function beside the change, no start-up registration can be missed,
    and `record_event`'s many callers keep their one call unchanged."""
    action, target = event.entry()
    row = AuditEvent(
        organization_id=event.organization_id,
        actor_id=event.actor_id,
        actor_email=event.actor_email,
        action=action,
        target=target,
        ip=event.ip,
        created_at=event.at,
    )
    session.add(row)
    metrics.count_audited_sign_in(action)
    bus.emit(session=session, event=event)
    return row


def record_event(
    *,
    session: Session,
    organization_id: int | None,
    actor: User | None,
    action: AuditAction,
    target: str | None = None,
    ip: str | None = None,
    actor_email: str | None = None,
) -> AuditEvent:
    """Add one event to the log (committed with the caller's transaction) and emit it on the bus."""
    recorded = bus.Recorded(
        organization_id=organization_id,
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else actor_email,
        action=action,
        target=target,
        ip=ip,
    )
    return record(session=session, event=recorded)


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the time and id of its newest or oldest event."""

    created_at: datetime
    id: int

    @classmethod
    def of(cls, event: AuditEvent) -> 'Cursor':
        assert event.id is not None
        return cls(event.created_at, event.id)


@dataclass(frozen=True)
class ActivityFilters:
    """What the reader narrowed the log to: one person (their email), one kind of action, and text to search for
    in the target, the email, the client IP and the plain words of the action."""

    person: str | None = None
    action: str | None = None
    search: str = ''

    def validated(self) -> 'ActivityFilters':
        search = ' '.join((self.search or '').split())
        if len(search) > SEARCH_MAX_LENGTH:
            raise ValidationFailed(f'Search for at most {SEARCH_MAX_LENGTH} characters', field='search')
        if self.action and self.action not in set(AuditAction):
            raise ValidationFailed('Choose a kind of activity from the list', field='action')
        person = (self.person or '').strip().lower() or None
        return ActivityFilters(person=person, action=self.action or None, search=search)


@dataclass(frozen=True)
class ActivityPage:
    """One page of the log, newest first, and whether there is more on either side of it."""

    events: list[AuditEvent]
    has_older: bool
    has_newer: bool

    @property
    def newest(self) -> Cursor | None:
        return Cursor.of(self.events[0]) if self.events else None

    @property
    def oldest(self) -> Cursor | None:
        return Cursor.of(self.events[-1]) if self.events else None


@dataclass(frozen=True)
class Person:
    email: str
    name: str


def activity_page(
    *,
    session: Session,
    actor: User,
    filters: ActivityFilters | None = None,
    size: int = PAGE_SIZES[0],
    older_than: Cursor | None = None,
    newer_than: Cursor | None = None,
) -> ActivityPage:
    """One page of the actor's organization's events, newest first (admins only): the newest `size`, the `size`
    just older than `older_than`, or the `size` just newer than `newer_than` (the newest page once fewer remain)."""
    require_admin(session=session, actor=actor)
    filters = (filters or ActivityFilters()).validated()
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationFailed(f'Show from 1 to {MAX_PAGE_SIZE} entries a page', field='size')
    conditions = _conditions(actor, filters)
    if newer_than is not None:
        newer = list(
            session.exec(
                select(AuditEvent)
                .where(*conditions, _after(newer_than))
                .order_by(col(AuditEvent.created_at).asc(), col(AuditEvent.id).asc())
                .limit(size + 1)
            )
        )
        if len(newer) > size:
            return ActivityPage(events=newer[:size][::-1], has_older=True, has_newer=True)
        older_than = None  # within a page of the newest: show the newest page itself, full
    statement = select(AuditEvent).where(*conditions)
    if older_than is not None:
        statement = statement.where(_before(older_than))
    events = list(session.exec(_newest_first(statement).limit(size + 1)))
    return ActivityPage(events=events[:size], has_older=len(events) > size, has_newer=older_than is not None)


def people(*, session: Session, actor: User) -> list[Person]:
    """Everyone of the actor's organization who can appear in its log, by name (admins only; removed members too)."""
    require_admin(session=session, actor=actor)
    rows = session.exec(
        select(User.email, User.name).where(User.organization_id == actor.organization_id).order_by(User.name)
    )
    return [Person(email=email, name=name) for email, name in rows]


@dataclass(frozen=True)
class Export:
    """The CSV of every matching event (up to `EXPORT_LIMIT`), newest first."""

    text: str
    rows: int
    truncated: bool


def export_csv(*, session: Session, actor: User, filters: ActivityFilters | None = None, zone: tzinfo = UTC) -> Export:
    """Every event matching `filters` as CSV (admins only), times in `zone`, actions in plain words; a header row
    first. Read in index order a batch at a time; stops after `EXPORT_LIMIT` rows."""
    require_admin(session=session, actor=actor)
    filters = (filters or ActivityFilters()).validated()
    conditions = _conditions(actor, filters)
    zone_name = zone_label(zone)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\r\n')
    writer.writerow((f'When ({zone_name})', *CSV_HEADER[1:]))
    written = 0
    for event in _matching_rows(session, conditions, limit=EXPORT_LIMIT + 1):
        if written == EXPORT_LIMIT:
            return Export(text=buffer.getvalue(), rows=written, truncated=True)
        writer.writerow(
            (
                format_time(event.created_at, zone),
                _safe_cell(event.actor_email or 'system'),
                action_label(event.action),
                _safe_cell(event.target or ''),
                _safe_cell(event.ip or ''),
            )
        )
        written += 1
    return Export(text=buffer.getvalue(), rows=written, truncated=False)


def zone_label(zone: tzinfo) -> str:
    return 'UTC' if zone is UTC else str(zone)


def format_time(moment: datetime, zone: tzinfo) -> str:
    """The one time format of the Activity tab and its CSV: `2026-12-01 14:03` in the reader's zone."""
    return moment.astimezone(zone).strftime(TIME_FORMAT)


def _conditions(actor: User, filters: ActivityFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [col(AuditEvent.organization_id) == actor.organization_id]
    if filters.person:
        conditions.append(col(AuditEvent.actor_email) == filters.person)
    if filters.action:
        conditions.append(col(AuditEvent.action) == filters.action)
    if filters.search:
        conditions.append(_search(filters.search))
    return conditions


def _search(text: str) -> ColumnElement[bool]:
    matches: list[ColumnElement[bool]] = [
        col(column).icontains(text, autoescape=True)
        for column in (AuditEvent.target, AuditEvent.actor_email, AuditEvent.ip)
    ]
    words = text.lower()
    actions = [action.value for action, label in ACTION_LABELS.items() if words in label.lower()]
    if actions:
        matches.append(col(AuditEvent.action).in_(actions))
    return or_(*matches) if matches else false()


def _before(cursor: Cursor) -> ColumnElement[bool]:
    # Spelled out rather than as a row value: `created_at <= t` is the range the index walk starts from on every
    # engine; the id only breaks ties between events of the same microsecond.
    created_at = col(AuditEvent.created_at)
    return and_(created_at <= cursor.created_at, or_(created_at < cursor.created_at, col(AuditEvent.id) < cursor.id))


def _after(cursor: Cursor) -> ColumnElement[bool]:
    created_at = col(AuditEvent.created_at)
    return and_(created_at >= cursor.created_at, or_(created_at > cursor.created_at, col(AuditEvent.id) > cursor.id))


def _newest_first(statement: SelectT) -> SelectT:
    return statement.order_by(col(AuditEvent.created_at).desc(), col(AuditEvent.id).desc())


def _matching_rows(session: Session, conditions: Sequence[ColumnElement[bool]], *, limit: int) -> Iterator[AuditEvent]:
    """The matching events, newest first, a keyset batch at a time (the session holds loaded rows only weakly, so a
    long export keeps one batch in memory)."""
    cursor: Cursor | None = None
    remaining = limit
    while remaining > 0:
        statement = select(AuditEvent).where(*conditions)
        if cursor is not None:
            statement = statement.where(_before(cursor))
        batch = list(session.exec(_newest_first(statement).limit(min(EXPORT_BATCH, remaining))))
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        remaining -= len(batch)
        cursor = Cursor.of(batch[-1])


def _safe_cell(text: str) -> str:
    """Text a spreadsheet shows as text, never runs as a formula (`=HYPERLINK(...)` typed into an invitation)."""
    return f"'{text}" if text[:1] in ('=', '+', '-', '@', '\t', '\r') else text
