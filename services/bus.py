"""One bus for every change: a service emits a typed event inside its write transaction, and the bus hands it to each
subscriber once, after that transaction commits (never when it rolls back).

Two kinds of subscriber, registered once at import or start-up:
- in the transaction (`subscribe(..., in_transaction=True)`): run at `emit`, on the caller's session, so what they
  do commits or rolls back with the change. Only `services/events.py` is one: `NOTIFY` for other processes on
  PostgreSQL, which the database itself delivers when (and only if) the transaction commits.
- after the commit (`subscribe(...)`): the alerts (`services/team/alerts.py`) and this process's open pages
  (`ui/open_pages.py`). They run on the thread that committed, right after the commit, so they only hand work on (a
  mail thread, the event loop) and never block or fail the caller: an exception is logged and the others still run.

The bus writes nothing itself. An audited change is one call, `audit.record(session=..., event=...)`: it adds the
audit row to the caller's transaction and emits the same event (see `services/audit.py` for why the row is written
there and not by a subscriber). Events travel between processes only as the little `NOTIFY` says (`services/events.py`):
a receiver there re-reads the database.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction

from models import AuditAction, Role
from models.base import utcnow

log = logging.getLogger(__name__)

_PENDING = 'cxt_bus_pending'  # session.info: the events emitted in its transaction, each with the (sub)transaction


# ---------------------------------------------------------------------------------------------------------------
# The events


@dataclass(frozen=True, kw_only=True)
class Event:
    """A committed change; `organization_id` None: not one organization's (a person's sessions)."""

    organization_id: int | None


@dataclass(frozen=True, kw_only=True)
class TeamChanged(Event):
    """Invitations sent, resent, revoked, delivered or interrupted; someone joined."""


@dataclass(frozen=True, kw_only=True)
class KeyChanged(Event):
    """The API key generated or rotated, or an old key revoked."""


@dataclass(frozen=True, kw_only=True)
class SubdomainsSaved(Event):
    """The Kustomer subdomains saved."""


@dataclass(frozen=True, kw_only=True)
class SessionsEnded(Event):
    """Some or all of a person's sessions ended (signed out, removed, password reset, second factor now required)."""

    user_id: int
    organization_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Audited(Event):
    """A change the audit log records: who did it, from where, and when (the row's time)."""

    actor_id: int | None
    actor_email: str | None
    ip: str | None = None
    at: datetime = field(default_factory=utcnow)

    def entry(self) -> tuple[AuditAction, str | None]:
        """The audit row's action and target."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Recorded(Audited):
    """Any audited action, its target as the Activity tab shows it (a person's email, a key's mask, a name)."""

    action: AuditAction
    target: str | None = None

    def entry(self) -> tuple[AuditAction, str | None]:
        return self.action, self.target


@dataclass(frozen=True, kw_only=True)
class RoleChanged(Audited):
    user_id: int
    email: str
    previous: Role
    new: Role

    def entry(self) -> tuple[AuditAction, str | None]:
        return AuditAction.MEMBER_ROLE_CHANGED, f'{self.email}: {self.previous} → {self.new}'


@dataclass(frozen=True, kw_only=True)
class MemberRemoved(Audited):
    user_id: int
    email: str
    role: Role  # the role they had

    def entry(self) -> tuple[AuditAction, str | None]:
        return AuditAction.MEMBER_REMOVED, self.email


@dataclass(frozen=True, kw_only=True)
class InvitationAccepted(Audited):
    user_id: int
    email: str
    role: Role

    def entry(self) -> tuple[AuditAction, str | None]:
        return AuditAction.INVITATION_ACCEPTED, f'{self.email} ({self.role})'


# ---------------------------------------------------------------------------------------------------------------
# Subscribing and emitting

Subscriber = Callable[[Event], None]
TransactionSubscriber = Callable[[OrmSession, Event], None]

_in_transaction: list[TransactionSubscriber] = []
_after_commit: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """Hand every committed event to `subscriber` (on the committing thread: it must only pass the work on)."""
    if subscriber not in _after_commit:
        _after_commit.append(subscriber)


def subscribe_in_transaction(subscriber: TransactionSubscriber) -> None:
    """Call `subscriber` at each `emit`, inside the emitting transaction (what it does commits with the change)."""
    if subscriber not in _in_transaction:
        _in_transaction.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _after_commit:
        _after_commit.remove(subscriber)


def emit(*, session: OrmSession, event: Event) -> None:
    """Deliver `event` to every subscriber once the caller's transaction commits (nothing if it rolls back)."""
    for subscriber in list(_in_transaction):
        subscriber(session, event)
    session.connection()  # begun, so the event belongs to this transaction (or savepoint)
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((event, transaction))


def _deliver(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its events wait for the transaction around it
    pending: list[tuple[Event, SessionTransaction]] = session.info.pop(_PENDING, [])
    for event, _ in pending:
        for subscriber in list(_after_commit):
            try:
                subscriber(event)
            except Exception:  # the change is committed: a subscriber's bug must not tell the caller otherwise
                log.exception('Bus: a subscriber failed on %s', type(event).__name__)


def _drop_rolled_back(session: OrmSession, previous_transaction: SessionTransaction) -> None:
    """Forget the events emitted in a transaction (or savepoint) that rolled back, and in those inside it."""
    pending: list[tuple[Event, SessionTransaction]] = session.info.get(_PENDING, [])
    session.info[_PENDING] = [(e, t) for e, t in pending if not _within(t, previous_transaction)]


def _forget_at_end(session: OrmSession, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (closed, or rolled back): nothing it emitted happened.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def install() -> None:
    """Hook every session's commits and rollbacks (idempotent; done on import)."""
    listeners: tuple[tuple[str, Callable[..., Any]], ...] = (
        ('after_commit', _deliver),
        ('after_soft_rollback', _drop_rolled_back),
        ('after_transaction_end', _forget_at_end),
    )
    for name, listener in listeners:
        if not orm_event.contains(OrmSession, name, listener):
            orm_event.listen(OrmSession, name, listener)


install()
