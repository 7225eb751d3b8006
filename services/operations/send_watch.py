"""Invitations left `Sending…` by a process that died mid-send, found on a schedule by the processes still alive.

A send belongs to the process that started it (`Invitation.sending_owner`, its `events.PROCESS_ID`). On PostgreSQL,
where several processes share the database, each serving process beats every `BEAT_INTERVAL` seconds
(`process_heartbeat`) and, on the same tick, marks the sends whose owner has not beaten for
`invitations.HEARTBEAT_STALE_AFTER` as `Email failed` (interrupted; resend), publishing the change so every open team
list shows it. A live process's send is never marked, however long its mail server takes; one frozen past the limit
is marked, and its own record_delivery puts the real outcome back when it thaws.

On SQLite one process serves a data directory (services/operations/process_lock.py): what is `Sending…` when it starts
was
left by a dead one, so start-up marks it all and no heartbeat is needed.
"""

import asyncio
import logging
import threading
from collections.abc import Callable

from services.db import read_scope, write_scope
from services.identity import invitations

log = logging.getLogger(__name__)

BEAT_INTERVAL = 2.0  # seconds; well inside HEARTBEAT_STALE_AFTER, so one slow tick never looks like a death

OnMarked = Callable[[list[int]], None]  # the organizations whose invitations were marked (for this process's pages)


def tick(on_marked: OnMarked | None = None) -> int:
    """Beat, then mark the sends of processes that are gone; returns how many were marked."""
    with write_scope() as session:
        invitations.beat(session=session)
    with read_scope() as session:
        if not invitations.has_interrupted_sends(session=session):
            return 0  # the usual tick: one write (the beat) and one read
    with write_scope() as session:
        organizations = invitations.mark_interrupted_sends_by_organization(session=session)
    if organizations:
        log.info('Marked %d invitation sends of a process that is gone as interrupted', len(organizations))
        if on_marked is not None:
            on_marked(organizations)
    return len(organizations)


class _Watcher:
    def __init__(self, interval: float, on_marked: OnMarked | None) -> None:
        self.stop = threading.Event()
        self.on_marked = on_marked
        self.failing = False
        self.thread = threading.Thread(target=self._run, args=(interval,), name='send-watch', daemon=True)

    def _run(self, interval: float) -> None:
        while not self.stop.wait(interval):
            try:
                tick(self.on_marked)
            except Exception as error:
                if not self.failing:  # once per outage, not every two seconds
                    log.warning('Invitation sends: could not beat or look for interrupted sends: %s', error)
                self.failing = True
            else:
                if self.failing:
                    log.info('Invitation sends: beating again')
                self.failing = False


_watcher: _Watcher | None = None
_watcher_lock = threading.Lock()


def start_watching(*, on_marked: OnMarked | None = None, interval: float = BEAT_INTERVAL) -> None:
    """Beat and look for interrupted sends every `interval` seconds on a background thread (once per process)."""
    global _watcher
    with _watcher_lock:
        if _watcher is not None and _watcher.thread.is_alive():
            return
        _watcher = _Watcher(interval, on_marked)
        _watcher.thread.start()


async def stop_watching() -> None:
    """Stop the background thread (the app's shutdown; the wait runs off the event loop)."""
    await asyncio.to_thread(stop_watching_now)


def stop_watching_now() -> None:
    global _watcher
    with _watcher_lock:
        watcher, _watcher = _watcher, None
    if watcher is not None:
        watcher.stop.set()
        watcher.thread.join(timeout=10)
