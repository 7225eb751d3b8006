from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from services.db import get_engine

T = TypeVar('T')


async def run_db(function: Callable[[], T]) -> T:
    """Run a short database call: inline on SQLite (local, microseconds), in a thread for a networked database."""
    if get_engine().dialect.name == 'sqlite':
        return function()
    return await run_in_threadpool(function)
