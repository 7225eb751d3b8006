"""Changes other processes must see at once, sent over PostgreSQL `LISTEN`/`NOTIFY`.

This module is the bus's (`services/bus.py`) subscriber for other processes: at each `bus.emit` of a change an open
page shows (a member removed, sessions ended, a role, the team, the API key or the subdomains changed) it adds a
`NOTIFY` to the emitting transaction, which PostgreSQL delivers to every listening process only when that transaction
commits, and never when it rolls back. On SQLite it does nothing: one process serves a data directory
(`services/operations/process_lock.py`), and the bus brings that process's pages up to date itself.

A notification says only which organization or user to look at again; a receiver re-reads the database before it
acts (a payload is never trusted to say that a session has ended). Every listener receives every event, including
the process that sent it: `Event.from_this_process` lets that one skip what its own bus has already delivered.
"""

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import make_url, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from services import bus, metrics

log = logging.getLogger(__name__)

CHANNEL = 'cxt_events'
PROCESS_ID = f'{os.getpid()}-{uuid.uuid4().hex[:12]}'  # unique per process, also across machines
RETRY_FIRST = 0.25  # seconds before the first reconnection attempt; doubles up to RETRY_MAX
# At most this long between attempts, so a process listens again within ~1 s of the database being back (a refused
# attempt costs the database next to nothing; a failure is logged once, not per attempt).
RETRY_MAX = 0.75


class EventKind(StrEnum):
    MEMBER_REMOVED = 'member removed'
    SESSIONS_ENDED = 'sessions ended'
    ROLE_CHANGED = 'role changed'
    TEAM_CHANGED = 'team changed'  # invitations sent, resent, revoked, accepted, delivered
    KEY_CHANGED = 'key changed'  # generated, rotated, an old key revoked
    SUBDOMAINS_SAVED = 'subdomains saved'


@dataclass(frozen=True)
class Event:
    kind: EventKind
    organization_id: int | None
    user_id: int | None
    origin: str

    @property
    def from_this_process(self) -> bool:
        return self.origin == PROCESS_ID


# The changes other processes' open pages show, each as the notification names it.
_KINDS: dict[type[bus.Event], EventKind] = {
    bus.MemberRemoved: EventKind.MEMBER_REMOVED,
    bus.SessionsEnded: EventKind.SESSIONS_ENDED,
    bus.RoleChanged: EventKind.ROLE_CHANGED,
    bus.TeamChanged: EventKind.TEAM_CHANGED,
    bus.InvitationAccepted: EventKind.TEAM_CHANGED,
    bus.KeyChanged: EventKind.KEY_CHANGED,
    bus.SubdomainsSaved: EventKind.SUBDOMAINS_SAVED,
}
_EVENTS: dict[EventKind, type[bus.Event]] = {
    EventKind.SESSIONS_ENDED: bus.SessionsEnded,
    EventKind.TEAM_CHANGED: bus.TeamChanged,
    EventKind.KEY_CHANGED: bus.KeyChanged,
    EventKind.SUBDOMAINS_SAVED: bus.SubdomainsSaved,
}


def about(event: bus.Event) -> Event | None:
    """What a notification of `event` says (None: nothing an open page shows), as sent from this process."""
    kind = _KINDS.get(type(event))
    if kind is None:
        return None
    return Event(
        kind=kind, organization_id=event.organization_id, user_id=getattr(event, 'user_id', None), origin=PROCESS_ID
    )


def publish(*, session: Session, kind: EventKind, organization_id: int | None, user_id: int | None = None) -> None:
    """Emit the bus event of `kind` (a member's removal and a role change are audited: `audit.record` emits those)."""
    if kind not in _EVENTS:
        raise ValueError(f'{kind} is audited: record it with audit.record and its typed event')
    if kind == EventKind.SESSIONS_ENDED:
        if user_id is None:
            raise ValueError('sessions ended: whose?')
        bus.emit(session=session, event=bus.SessionsEnded(organization_id=organization_id, user_id=user_id))
    else:
        bus.emit(session=session, event=_EVENTS[kind](organization_id=organization_id))


def _notify(session: OrmSession, event: bus.Event) -> None:
    """Tell every process about a change when (and only if) the emitting transaction commits (PostgreSQL)."""
    said = about(event)
    if said is None or session.get_bind().dialect.name != 'postgresql':
        return
    payload = json.dumps(
        {'kind': said.kind, 'organization_id': said.organization_id, 'user_id': said.user_id, 'origin': PROCESS_ID}
    )
    session.connection().execute(text('SELECT pg_notify(:channel, :payload)'), {'channel': CHANNEL, 'payload': payload})


bus.subscribe_in_transaction(_notify)


def parse(payload: str) -> Event | None:
    """The event in a notification's payload, or None when it is not one of ours."""
    try:
        data = json.loads(payload)
        return Event(
            kind=EventKind(data['kind']),
            organization_id=_optional_int(data.get('organization_id')),
            user_id=_optional_int(data.get('user_id')),
            origin=str(data.get('origin', '')),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f'not an id: {value!r}')
    return value


def driver_url(url: str) -> str:
    """A libpq connection string for psycopg from the app's SQLAlchemy URL (`postgresql+psycopg://…`)."""
    return make_url(url).set(drivername='postgresql').render_as_string(hide_password=False)


async def listen(
    url: str,
    on_event: Callable[[Event], Awaitable[None]],
    *,
    on_listening: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Receive events until cancelled, reconnecting with backoff whenever the connection drops.

    `on_listening` runs after every successful `LISTEN`, the first and each reconnection: events sent while the
    connection was down are lost, so a receiver should look at everything again then. A failure is logged once,
    when it starts, and the recovery once; the retries between are silent.
    """
    import psycopg  # only PostgreSQL deployments listen; SQLite ones never load the driver

    delay = RETRY_FIRST
    failing = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(driver_url(url), autocommit=True) as connection:
                await connection.execute(f'LISTEN {CHANNEL}')
                metrics.set_events_listening(True)
                if failing:
                    log.info('Cross-process events: listening again')
                failing, delay = False, RETRY_FIRST
                if on_listening is not None:
                    await _guarded(on_listening())
                async for notify in connection.notifies():
                    event = parse(notify.payload)
                    if event is None:
                        log.warning(
                            'Cross-process events: ignored a payload that is not an event: %.200r', notify.payload
                        )
                        continue
                    await _guarded(on_event(event))
        except asyncio.CancelledError:
            metrics.set_events_listening(False)
            raise
        except (psycopg.Error, OSError) as error:
            metrics.set_events_listening(False)
            if not failing:
                log.warning('Cross-process events: no connection to the database (%s); retrying', error)
            failing = True
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


async def _guarded(work: Awaitable[None]) -> None:
    # A receiver's bug must not end the listener: every later event would be lost.
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception('Cross-process events: applying an event failed')
