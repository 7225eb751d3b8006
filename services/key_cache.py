"""The widget API's per-process cache on PostgreSQL, and revocation that is complete when `Rotate` returns.

What is cached: what a widget request reads per call (a key's lookup: its organization, name, subdomains and
expiry; whether an origin's subdomain is saved by some organization). A hit costs no statement, no thread hop and
no pool checkout. Expiry is still judged against the clock on every request, hit or miss.

Invalidation. Every change to what is cached (a key generated, rotated or revoked; subdomains saved) calls
`invalidate` inside its write transaction: that sends `inv <token> <process>` on the channel `cxt_keys`, which
PostgreSQL delivers to every listening process when, and only if, the transaction commits. A process that hears
an `inv` empties its cache and answers `ack <token> <process>`.

Fail closed. Each process runs one listener thread with two connections of its own (one `LISTEN cxt_keys`, one
sends). Every 0.2 s it sends itself a heartbeat (`hb <process> <n>`, the time noted before it is sent). When its own
heartbeat comes back, the process may serve from its cache until that heartbeat's send time + `FRESH_FOR` (1 s), by
its own clock (CLOCK_BOOTTIME: it runs on while the process is stopped or the machine suspended). A lost connection
stops serving from the cache at once; a listener that is stuck, a process that was frozen, a database that stopped
answering all stop it within 1 s, because no newer heartbeat comes back. Until it is fresh again every request reads
the database, as without a cache; each (re)`LISTEN` empties the cache.

Why a process that has not heard an `inv` stops serving the old entry within 1 s of the commit. PostgreSQL
delivers notifications to a listener in the order their transactions committed, and the listener thread applies
them one at a time in that order. A heartbeat sent (so committed) after the rotation committed therefore reaches
the process after the `inv`, which has emptied its cache by then. So while the `inv` is not applied, the freshest
heartbeat the process has applied was sent before the commit, and its cache is trusted until less than 1 s after
the commit, at the latest. This holds whether the process freezes (SIGSTOP: its clock runs on, so its
first request after it resumes finds the cache stale), dies, or loses its connection mid-rotation. Entries read
from the database are only stored if no `inv` and no reconnection happened since the read began (a generation
number), so a read from before the commit cannot be stored after the `inv` emptied the cache.

When `Rotate` returns. After the commit, the rotating call (`wait_after_commit`, run by the session's
after-commit hook) waits until either (a) every process seen alive has confirmed, or (b) `CONFIRM_BOUND` (2 s)
has passed. (b) is safe by the argument above: 2 s > 1 s. (a) is safe because of how "seen alive" is decided: it
is every process whose heartbeat this process received in the `SEEN_WINDOW` (1.5 s) before the transaction began,
up to the moment this process's own listener received the `inv` itself; and it counts only if this listener has
been listening, on one connection, since before that window. A process that could still serve the old entry from
its cache after the commit must have applied a heartbeat committed within the 1 s before the commit; committed
before the `inv`, that heartbeat was delivered to this listener before the `inv`, so the process is in the set, and
its `ack` is needed. Without its own listener (or with one that reconnected in the window) the rotating call
simply waits the 2 s. A dead or frozen process is waited for up to the 2 s; a new process is not fresh before its
own first heartbeat comes back, which is after the `inv` if it listened before the commit, and if it listened
after the commit it reads the new state.

SQLite does not use this module: one process serves an SQLite database, and `api_keys.verify_key` caches per
connection against `PRAGMA data_version` instead.
"""

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session as OrmSession

log = logging.getLogger(__name__)

CHANNEL = 'cxt_keys'
PROCESS = f'{os.getpid()}-{uuid.uuid4().hex[:12]}'
HEARTBEAT_EVERY = 0.2  # seconds between a process's heartbeats to itself
FRESH_FOR = 1.0  # the cache is trusted this long after the send time of the newest heartbeat heard back
CONFIRM_BOUND = 2.0  # the longest a rotating call waits after its commit (must exceed FRESH_FOR)
SEEN_WINDOW = FRESH_FOR + 0.5  # heartbeats heard this long before a change name the processes that must confirm
RETRY_EVERY = 0.25  # between reconnection attempts: listening again within ~0.3 s of the database being back
CONNECT_TIMEOUT = 2  # seconds; a stuck attempt does not keep the listener from retrying
LIMIT = 4096  # entries; past it the cache starts over
_INFO_KEY = 'cxt_key_cache_tokens'


def _clock() -> float:
    """Seconds on a clock that never goes back and keeps running while the process is stopped or the machine
    suspended (Linux's CLOCK_BOOTTIME; elsewhere the monotonic clock)."""
    return time.clock_gettime(_CLOCK_ID)


_CLOCK_ID = getattr(time, 'CLOCK_BOOTTIME', time.CLOCK_MONOTONIC)


@dataclass
class _Waiter:
    """A change this process committed (or is committing): who must confirm it, who has."""

    started: float  # `_clock()`, before the change's transaction committed
    heard: bool = False  # this process's own listener received the change's `inv`
    expected: set[str] = field(default_factory=set)
    acks: set[str] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[Any, Any] = {}
        self.generation = 0
        self.fresh_until = 0.0  # `_clock()`; 0 while not listening
        self.listening_since: float | None = None  # `_clock()`, the current connection's LISTEN
        self.last_heard: dict[str, float] = {}  # process -> when its newest heartbeat was received here
        self.waiters: dict[str, _Waiter] = {}

    def forget(self) -> None:
        """Empty the cache; reads that began before this may not be stored."""
        with self.lock:
            self.entries = {}
            self.generation += 1


_state = _State()
_listener: '_Listener | None' = None


# ---------------------------------------------------------------------------------------------------------------
# The request path


def fresh() -> bool:
    """Whether this process may serve from its cache now (listening, and its own heartbeat heard within 1 s)."""
    return _clock() < _state.fresh_until


def get(key: Any) -> Any | None:
    """The cached value for `key`, or None (not cached, or the cache may not be trusted now)."""
    if _clock() >= _state.fresh_until:
        return None
    return _state.entries.get(key)


def generation() -> int | None:
    """Take before reading the database, pass to `put`; None when the cache may not be trusted now."""
    if _clock() >= _state.fresh_until:
        return None
    return _state.generation


def put(key: Any, value: Any, generation: int | None) -> None:
    """Store what was read after `generation()` returned `generation`, unless a change or reconnection came since."""
    if generation is None:
        return
    with _state.lock:
        if _state.generation != generation:
            return
        if len(_state.entries) >= LIMIT:
            _state.entries = {}
        _state.entries[key] = value


# ---------------------------------------------------------------------------------------------------------------
# The writing side


def invalidate(*, session: OrmSession) -> None:
    """Inside a write transaction that changes a key, an organization's name or its subdomains: every process
    forgets its cached lookups when it commits, and the commit returns once they have (see the module's text)."""
    if session.get_bind().dialect.name != 'postgresql':
        return
    token = uuid.uuid4().hex
    with _state.lock:
        _state.waiters[token] = _Waiter(started=_clock())
    session.info.setdefault(_INFO_KEY, []).append(token)
    payload = f'inv {token} {PROCESS}'
    session.connection().execute(text('SELECT pg_notify(:channel, :payload)'), {'channel': CHANNEL, 'payload': payload})


def wait_after_commit(tokens: list[str]) -> None:
    """Return once every process seen alive confirmed the changes, or after `CONFIRM_BOUND` at the most."""
    _state.forget()  # this process forgets at once, whatever its listener does
    deadline = _clock() + CONFIRM_BOUND
    for token in tokens:
        waiter = _state.waiters.get(token)
        if waiter is not None:
            waiter.done.wait(max(0.0, deadline - _clock()))
    _drop_waiters(tokens)


def _drop_waiters(tokens: list[str]) -> None:
    with _state.lock:
        for token in tokens:
            _state.waiters.pop(token, None)


@event.listens_for(OrmSession, 'after_commit')
def _after_commit(session: OrmSession) -> None:
    tokens = session.info.pop(_INFO_KEY, None)
    if tokens:
        wait_after_commit(tokens)


@event.listens_for(OrmSession, 'after_rollback')
def _after_rollback(session: OrmSession) -> None:
    tokens = session.info.pop(_INFO_KEY, None)
    if tokens:
        _drop_waiters(tokens)


# ---------------------------------------------------------------------------------------------------------------
# The listener


def start(database_url: str) -> None:
    """Start this process's listener thread (PostgreSQL; once per process, at start-up)."""
    global _listener
    if _listener is not None and _listener.is_alive():
        return
    _listener = _Listener(database_url)
    _listener.start()


def stop() -> None:
    """Stop the listener (the app's shutdown); the cache is not trusted from then on."""
    global _listener
    listener, _listener = _listener, None
    if listener is not None:
        listener.halt.set()
        listener.join(timeout=5)
    _lost()


def _lost() -> None:
    with _state.lock:
        _state.fresh_until = 0.0
        _state.listening_since = None
        _state.entries = {}
        _state.generation += 1


class _Listener(threading.Thread):
    def __init__(self, database_url: str) -> None:
        super().__init__(name='key-cache-listener', daemon=True)
        self.database_url = database_url
        self.halt = threading.Event()
        self.sent: dict[int, float] = {}  # heartbeat number -> `_clock()` before it was sent
        self.sending: Any = None

    def run(self) -> None:
        import psycopg

        from services.events import driver_url

        failing = False
        while not self.halt.is_set():
            try:
                # One connection listens; the other sends (heartbeats, acks) without waiting for the listening one.
                with (
                    psycopg.connect(
                        driver_url(self.database_url),
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT,
                        application_name='cxt key cache',
                    ) as listening,
                    psycopg.connect(
                        driver_url(self.database_url),
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT,
                        application_name='cxt key cache sender',
                    ) as sending,
                ):
                    listening.execute(f'LISTEN {CHANNEL}')
                    with _state.lock:
                        _state.entries = {}
                        _state.generation += 1
                        _state.listening_since = _clock()
                    if failing:
                        log.info('Key cache: listening again')
                    failing = False
                    self.serve(listening, sending)
            except (psycopg.Error, OSError) as error:
                _lost()
                if not failing:
                    log.warning('Key cache: not listening (%s); every widget request reads the database', error)
                failing = True
            except Exception:
                _lost()
                log.exception('Key cache: the listener failed; every widget request reads the database')
                failing = True
            self.halt.wait(RETRY_EVERY)

    def serve(self, listening: Any, sending: Any) -> None:
        self.sent = {}
        self.sending = sending
        number = 0
        next_beat = 0.0
        while not self.halt.is_set():
            now = _clock()
            if now >= next_beat:
                number += 1
                self.sent = {n: at for n, at in self.sent.items() if at > now - FRESH_FOR}
                self.sent[number] = now
                self.send(f'hb {PROCESS} {number}')
                next_beat = now + HEARTBEAT_EVERY
            for notify in listening.notifies(timeout=max(0.0, next_beat - _clock())):
                self.apply(notify.payload)

    def send(self, payload: str) -> None:
        self.sending.execute('SELECT pg_notify(%s, %s)', (CHANNEL, payload))

    def apply(self, payload: str) -> None:
        kind, _, rest = payload.partition(' ')
        if kind == 'hb':
            self._heartbeat(*_two_words(rest))
        elif kind == 'inv':
            self._invalidated(*_two_words(rest))
        elif kind == 'ack':
            _acknowledged(*_two_words(rest))

    def _heartbeat(self, sender: str, number: str) -> None:
        now = _clock()
        _state.last_heard[sender] = now
        if sender == PROCESS:
            sent = self.sent.pop(int(number), None) if number.isdigit() else None
            if sent is not None:
                _state.fresh_until = max(_state.fresh_until, sent + FRESH_FOR)

    def _invalidated(self, token: str, sender: str) -> None:
        _state.forget()
        if sender != PROCESS:
            self.send(f'ack {token} {PROCESS}')
            return
        waiter = _state.waiters.get(token)
        if waiter is None:
            return
        since = _state.listening_since
        if since is None or since > waiter.started - SEEN_WINDOW:
            return  # not listening through the whole window: the rotating call waits the full bound
        waiter.expected = {
            process
            for process, heard in _state.last_heard.items()
            if heard >= waiter.started - SEEN_WINDOW and process != PROCESS
        }
        waiter.heard = True
        _check(waiter)


def _two_words(rest: str) -> tuple[str, str]:
    first, _, second = rest.partition(' ')
    return first, second


def _acknowledged(token: str, sender: str) -> None:
    waiter = _state.waiters.get(token)
    if waiter is not None:
        waiter.acks.add(sender)
        _check(waiter)


def _check(waiter: _Waiter) -> None:
    if waiter.heard and waiter.expected <= waiter.acks:
        waiter.done.set()


def processes_seen(within: float = SEEN_WINDOW) -> Iterator[str]:
    """Other processes whose heartbeat this one heard lately (for tests and diagnostics)."""
    now = _clock()
    heard = list(_state.last_heard.items())
    return (process for process, at in heard if process != PROCESS and at >= now - within)
