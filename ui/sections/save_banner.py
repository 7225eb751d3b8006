"""A banner at the top of the dashboard while this server cannot save (what `/api/ready` answers 503 for).

Why not is services/operations/readiness.py's question: the database unreachable, read-only or gone (an SQLite file
deleted or
replaced under the process), or the data directory's disk below 50 MB. Every open dashboard asks again every
REFRESH_SECONDS, off the event loop; one check answers every page of this process for MAX_AGE seconds, so a hundred
open pages cost one check, not a hundred.
"""

import logging
import threading
import time

from nicegui import ui

from services.config import current_settings
from services.operations import readiness
from ui import actions

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0  # how often an open page asks
MAX_AGE = 5.0  # how long one check answers for every page of this process

_checked_lock = threading.Lock()
_checked: tuple[float, readiness.NotReady | None] | None = None  # (when, what it found)


def message(reason: readiness.NotReady) -> str:
    """What the banner says, e.g. `The server cannot save changes right now: the database is not answering.
    Changes you make now may not be saved.`"""
    explanation = reason.explanation
    return (
        f'The server cannot save changes right now: {explanation[0].lower()}{explanation[1:]} '
        'Changes you make now may not be saved.'
    )


def show() -> None:
    """The banner's place on the page: empty while the server can save; a banner (role=alert, so screen readers
    announce it when it appears) while it cannot; empty again once it can."""
    slot = ui.element('div').classes('w-full').mark('save-banner-slot')
    shown: list[readiness.NotReady | None] = [None]

    async def refresh() -> None:
        reason = await actions.off_loop(current_reason)
        if reason == shown[0]:
            return
        shown[0] = reason
        slot.clear()
        if reason is not None:
            with slot:
                # Dark red on light red: 5.7:1. The icon is decoration; the words say it all.
                with (
                    ui.row()
                    .classes('w-full items-center no-wrap gap-3 q-pa-md rounded-borders bg-red-1 text-red-10')
                    .style('border: 1px solid #b71c1c')
                    .props('role=alert')
                    .mark('save-banner')
                ):
                    ui.icon('warning', size='sm').props('aria-hidden=true')
                    ui.label(message(reason)).classes('text-body2')

    ui.timer(REFRESH_SECONDS, refresh)  # the first check runs at once


def current_reason() -> readiness.NotReady | None:
    """Why this process cannot save, or None; a check at most once per MAX_AGE for all pages. Call off the loop."""
    global _checked
    with _checked_lock:  # pages asking together wait for one check instead of each making its own
        if _checked is not None and time.monotonic() - _checked[0] < MAX_AGE:
            return _checked[1]
        try:
            reason = readiness.check_readiness(data_dir=current_settings().data_dir)
        except Exception:  # a failure the check does not know: the server cannot be trusted to save
            log.exception('readiness check failed')
            reason = readiness.NotReady.UNREACHABLE
        _checked = (time.monotonic(), reason)
        return reason
