"""How much each API key is used: widget API requests per key per hour, accepted and refused.

Counting costs the request path one dict increment under a lock (`count`, called by `api_keys.verify_key` for
the widget API): the counters live in this process's memory. A background thread (`start_flushing`, started and
stopped with the app) writes them once a minute in one upsert statement that adds to the stored hour rows, and
once more when the app shuts down; several processes each flush their own increments, so nothing is counted
twice. A failed flush keeps the counts for the next one. Rows older than 90 days are pruned, once a day.

The chart in Dashboard Settings (`traffic`) and the grace notice (`requests_last_hour`) read the stored rows plus
this process's counts that are not flushed yet. Both are admins-only and scoped to the actor's organization.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import ApiKey, KeyTraffic, User
from models.base import table_of, utcnow
from services.db import get_engine, write_scope
from services.permissions import require_admin

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 60.0  # seconds
RETENTION = timedelta(days=90)
PRUNE_EVERY = 24 * 3600.0  # seconds, measured on the monotonic clock
ROWS_PER_STATEMENT = 2000  # 8000 bound values: far below SQLite's and PostgreSQL's limits
HOUR = timedelta(hours=1)

Granularity = Literal['hour', 'day']
RANGES: dict[Granularity, int] = {'hour': 7 * 24, 'day': 30}  # buckets: the last 7 days by hour, 30 days by day

_table = table_of(KeyTraffic)
_lock = threading.Lock()
# (key id, hour number since the epoch) -> [accepted, refused], not yet written
_pending: dict[tuple[int, int], list[int]] = {}


# ---------------------------------------------------------------------------------------------------------------
# Counting (the request path)


def count(key_id: int, accepted: bool, now: datetime) -> None:
    """One widget API request presented key `key_id` at `now` and was accepted (or refused: the key expired or was
    rotated away). A dict increment: no database work, and no clock read (the caller has the time already)."""
    hour = _hour
    if not hour[0] <= now < hour[1]:
        hour = _set_hour(now)
    slot = (key_id, hour[2])
    with _lock:
        counts = _pending.get(slot)
        if counts is None:
            counts = _pending[slot] = [0, 0]
        counts[0 if accepted else 1] += 1


# The hour `count` last saw: (start, end, hour number since the epoch); replaced as a whole, so threads agree.
_hour: tuple[datetime, datetime, int] = (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), 0)


def _set_hour(now: datetime) -> tuple[datetime, datetime, int]:
    global _hour
    start = _floor_hour(now)
    _hour = (start, start + HOUR, int(start.timestamp()) // 3600)
    return _hour


def pending() -> dict[tuple[int, datetime], tuple[int, int]]:
    """This process's counts not written yet: (key id, hour) -> (accepted, refused)."""
    with _lock:
        items = [(slot, tuple(counts)) for slot, counts in _pending.items()]
    return {(key_id, _hour_start(hour)): (counts[0], counts[1]) for (key_id, hour), counts in items}


def discard_pending() -> None:
    """Forget the counts not written yet (for tests that start from a fresh database)."""
    with _lock:
        _pending.clear()


# ---------------------------------------------------------------------------------------------------------------
# Flushing


def flush(*, now: datetime | None = None) -> int:
    """Write this process's counts (one upsert adding to the stored hour rows) and, once a day, prune rows older
    than 90 days. Returns the number of (key, hour) rows written. Blocking: call off the event loop. On a failure
    the counts are kept for the next flush and the error is raised."""
    global _pending
    with _lock:
        taken, _pending = _pending, {}
    # In key and hour order: processes flushing at the same moment lock the rows in the same order (no deadlock).
    rows = [
        {'key_id': key_id, 'hour': _hour_start(hour), 'accepted': counts[0], 'refused': counts[1]}
        for (key_id, hour), counts in sorted(taken.items())
    ]
    if not rows and not _prune_due():
        return 0  # an idle minute takes no write lock
    try:
        with write_scope() as session:
            if rows:
                try:
                    with session.begin_nested():
                        _upsert(session, rows)
                except IntegrityError:
                    # A key was deleted since it was counted (its organization was deleted): its counts go with it.
                    rows = _for_existing_keys(session, rows)
                    _upsert(session, rows)
            _prune_if_due(session, now or utcnow())
    except BaseException:
        _restore(taken)
        raise
    return len(rows)


def prune(*, session: Session, now: datetime | None = None) -> int:
    """Delete the hour rows older than 90 days; returns how many."""
    result = session.connection().execute(delete(_table).where(_table.c.hour < (now or utcnow()) - RETENTION))
    return result.rowcount


_last_prune: float | None = None  # monotonic time of the last prune in this process


def _prune_due() -> bool:
    return _last_prune is None or time.monotonic() - _last_prune >= PRUNE_EVERY


def _prune_if_due(session: Session, now: datetime) -> None:
    global _last_prune
    if not _prune_due():
        return
    pruned = prune(session=session, now=now)
    _last_prune = time.monotonic()
    if pruned:
        log.info('Key traffic: pruned %d hour rows older than %d days', pruned, RETENTION.days)


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    connection = session.connection()
    insert = postgresql.insert if connection.dialect.name == 'postgresql' else sqlite.insert
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        statement = insert(_table).values(rows[start : start + ROWS_PER_STATEMENT])
        statement = statement.on_conflict_do_update(
            index_elements=[_table.c.key_id, _table.c.hour],
            set_={
                'accepted': _table.c.accepted + statement.excluded.accepted,
                'refused': _table.c.refused + statement.excluded.refused,
            },
        )
        connection.execute(statement)


def _for_existing_keys(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = {row['key_id'] for row in rows}
    existing = set(session.exec(select(ApiKey.id).where(col(ApiKey.id).in_(wanted))).all())
    return [row for row in rows if row['key_id'] in existing]


def _restore(taken: Mapping[tuple[int, int], list[int]]) -> None:
    with _lock:
        for slot, counts in taken.items():
            kept = _pending.setdefault(slot, [0, 0])
            kept[0] += counts[0]
            kept[1] += counts[1]


class _Flusher:
    def __init__(self, interval: float) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(interval,), name='key-traffic-flush', daemon=True)

    def _run(self, interval: float) -> None:
        while not self.stop.wait(interval):
            _flush_logged()
        _flush_logged()  # the last counts, on shutdown


_flusher: _Flusher | None = None
_flusher_lock = threading.Lock()


def start_flushing(interval: float = FLUSH_INTERVAL) -> None:
    """Flush every `interval` seconds on a background thread until `stop_flushing` (once per process)."""
    global _flusher
    with _flusher_lock:
        if _flusher is not None and _flusher.thread.is_alive():
            return
        _flusher = _Flusher(interval)
        _flusher.thread.start()


async def stop_flushing() -> None:
    """Stop the background thread after one last flush (the app's shutdown; the wait runs off the event loop)."""
    await asyncio.to_thread(stop_flushing_now)


def stop_flushing_now() -> None:
    global _flusher
    with _flusher_lock:
        flusher, _flusher = _flusher, None
    if flusher is not None:
        flusher.stop.set()
        flusher.thread.join(timeout=30)


def _flush_logged() -> None:
    try:
        get_engine()
    except RuntimeError:
        return  # no database yet (or any more): the counts stay for the next flush
    try:
        flush()
    except Exception as error:
        log.warning('Key traffic: could not write the request counts (kept for the next try): %s', error)


# ---------------------------------------------------------------------------------------------------------------
# Reading (admins, own organization)


@dataclass(frozen=True)
class KeySeries:
    """One key's requests per bucket."""

    key_id: int
    last4: str
    current: bool  # the active key; otherwise an old key (in its grace window or stopped)
    accepted: list[int]
    refused: list[int]

    @property
    def total(self) -> int:
        return sum(self.accepted) + sum(self.refused)


@dataclass(frozen=True)
class Traffic:
    granularity: Granularity
    buckets: list[datetime]  # each bucket's start (UTC), oldest first
    keys: list[KeySeries]  # the current key first, then old keys, newest first

    @property
    def labels(self) -> list[str]:
        pattern = '%m-%d %H:00' if self.granularity == 'hour' else '%Y-%m-%d'
        return [bucket.strftime(pattern) for bucket in self.buckets]


def traffic(*, session: Session, actor: User, granularity: Granularity, now: datetime | None = None) -> Traffic:
    """The organization's keys' requests over the last 7 days by hour or the last 30 days by day (admins only).
    Keys appear if they are the active key or had requests in that time."""
    require_admin(session=session, actor=actor)
    if granularity not in RANGES:
        raise ValueError(f'unknown granularity {granularity!r}')
    now = now or utcnow()
    buckets = _buckets(granularity, now)
    keys = _organization_keys(session, actor)
    hours = _hour_counts(session, keys, since=buckets[0])
    series = _series_with_requests(hours, keys=keys, buckets=buckets, granularity=granularity)
    for key in keys.values():
        if key.expires_at is None and key.id not in series:
            assert key.id is not None
            series[key.id] = KeySeries(key.id, key.last4, True, [0] * len(buckets), [0] * len(buckets))
    ordered = sorted(series.values(), key=lambda item: (not item.current, -keys[item.key_id].created_at.timestamp()))
    return Traffic(granularity, buckets, ordered)


def _series_with_requests(
    hours: dict[tuple[int, datetime], tuple[int, int]],
    *,
    keys: dict[int, ApiKey],
    buckets: list[datetime],
    granularity: Granularity,
) -> dict[int, KeySeries]:
    """One series per key with requests in `buckets`, each hour's counts added into the bucket it falls in."""
    index = {bucket: position for position, bucket in enumerate(buckets)}
    series: dict[int, KeySeries] = {}
    for (key_id, hour), (accepted, refused) in hours.items():
        bucket = hour if granularity == 'hour' else hour.replace(hour=0)
        position = index.get(bucket)
        if position is None:
            continue
        if key_id not in series:
            key = keys[key_id]
            series[key_id] = KeySeries(
                key_id, key.last4, key.expires_at is None, [0] * len(buckets), [0] * len(buckets)
            )
        series[key_id].accepted[position] += accepted
        series[key_id].refused[position] += refused
    return series


def requests_last_hour(*, session: Session, actor: User, key_id: int, now: datetime | None = None) -> int:
    """Requests (accepted and refused) that presented one of the organization's keys in the last hour: the hour
    buckets that overlap the last 60 minutes, so the clock hour before this one counts in full (admins only)."""
    require_admin(session=session, actor=actor)
    keys = _organization_keys(session, actor)
    if key_id not in keys:
        return 0
    since = _floor_hour((now or utcnow()) - HOUR)
    counts = _hour_counts(session, {key_id: keys[key_id]}, since=since)
    return sum(accepted + refused for accepted, refused in counts.values())


def _organization_keys(session: Session, actor: User) -> dict[int, ApiKey]:
    rows = session.exec(select(ApiKey).where(ApiKey.organization_id == actor.organization_id)).all()
    return {key.id: key for key in rows if key.id is not None}


def _hour_counts(
    session: Session, keys: Mapping[int, ApiKey], *, since: datetime
) -> dict[tuple[int, datetime], tuple[int, int]]:
    """Stored and pending counts per (key, hour) for `keys`, from the hour starting at `since` on."""
    counts: dict[tuple[int, datetime], tuple[int, int]] = {}
    if not keys:
        return counts
    statement = core_select(_table.c.key_id, _table.c.hour, _table.c.accepted, _table.c.refused).where(
        _table.c.key_id.in_(list(keys)), _table.c.hour >= since
    )
    rows: Iterable[Any] = session.connection().execute(statement)
    for key_id, hour, accepted, refused in rows:
        counts[(key_id, hour)] = (accepted, refused)
    for (key_id, hour), (accepted, refused) in pending().items():
        if key_id in keys and hour >= since:
            stored = counts.get((key_id, hour), (0, 0))
            counts[(key_id, hour)] = (stored[0] + accepted, stored[1] + refused)
    return counts


def _buckets(granularity: Granularity, now: datetime) -> list[datetime]:
    size = RANGES[granularity]
    if granularity == 'hour':
        last = _floor_hour(now)
        return [last - HOUR * (size - 1 - position) for position in range(size)]
    last = _floor_hour(now).replace(hour=0)
    return [last - timedelta(days=size - 1 - position) for position in range(size)]


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)
