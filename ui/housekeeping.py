"""The schedule of `services/operations/housekeeping.py`: at start-up and every 10 minutes, off the event loop."""

import logging

from nicegui import app, run

from services.acting import SCOPES, describe_failure
from services.operations import housekeeping

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 600.0  # seconds; a session row outlives its end by at most this


def start() -> None:
    """Register the timer (call once the app starts: `app.on_startup`)."""
    app.timer(PRUNE_INTERVAL, prune_now)


async def prune_now() -> None:
    try:
        pruned = await run.io_bound(lambda: housekeeping.prune(scopes=SCOPES))
    except Exception as error:  # the database may be away for a while; the next pass tries again
        log.warning('Pruning ended sessions failed: %s', describe_failure(error) or error)
        return
    if pruned is not None and pruned.total:
        log.info(
            'Pruned %s ended sessions, %s pending sign-ins, %s old failed attempts',
            pruned.sessions,
            pruned.pending_sign_ins,
            pruned.failed_attempts,
        )
