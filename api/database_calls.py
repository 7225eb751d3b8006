"""Where an API route's database work runs: never waiting on the event loop."""

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from services.db import get_engine

T = TypeVar('T')


async def key_lookup(function: Callable[[], T]) -> T:
    """The widget API's per-request key lookup: inline on SQLite, in a thread for a networked database.

    Inline is safe there because the lookup runs on a held autocommit reader (`services.db.hot_read_connection`):
    a WAL reader never waits for a writer, it takes microseconds, and its once-a-minute `last_used_at` write gives up
    at once instead of waiting (`services.db.without_lock_wait`). A thread hop would cost more than the lookup.
    """
    if get_engine().dialect.name == 'sqlite':
        return function()
    return await run_in_threadpool(function)


async def in_thread(function: Callable[[], T]) -> T:
    """Any other database work (it may wait for a writer): on a worker thread."""
    return await run_in_threadpool(function)
