"""Who acts, and the transactions a use case opens: what every use case (`services/<department>/...`) is given.

A use case is one service function per user action. The UI's action helper (`ui/actions.py`) and the command line
build the `Actor` and pass `SCOPES`; tests may pass the same. The pages never open a transaction themselves.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import Session

from models import User
from services import db

T = TypeVar('T')


@dataclass(frozen=True)
class Actor:
    """The signed-in person acting: as the database said when the action began, from which address, in which
    session (None: the command line, where nobody is signed in). Services re-read what they decide on (role,
    status, the session's last password entry) inside their own transaction."""

    user: User
    ip: str | None
    session_id: int | None


@dataclass(frozen=True)
class Scopes:
    """The transactions a use case may open, one per step (a slow call between steps runs outside any):
    `read()` never waits for a writer and is rolled back; `write()` commits when its block ends."""

    read: Callable[[], AbstractContextManager[Session]]
    write: Callable[[], AbstractContextManager[Session]]

    def reading(self, query: Callable[[Session], T]) -> T:
        """`query` in one read transaction."""
        with self.read() as session:
            return query(session)

    def writing(self, change: Callable[[Session], T]) -> T:
        """`change` in one write transaction, committed when it returns."""
        with self.write() as session:
            return change(session)


SCOPES = Scopes(read=db.read_scope, write=db.write_scope)

# A failed scope told in a sentence for a person (the database or its disk failing), for callers that never see the
# database layer itself: the UI's action helper and its scheduled work.
describe_failure = db.describe_failure
