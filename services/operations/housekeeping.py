"""Rows that only ever pile up: ended sessions, handoff codes nobody redeemed, expired sign-ins waiting for their
second step and old failed attempts. The app deletes them on a schedule (`ui/housekeeping.py`)."""

from dataclasses import dataclass

from sqlmodel import Session

from services.acting import Scopes
from services.identity import attempts, sessions, two_factor


@dataclass(frozen=True)
class Pruned:
    """How many rows one pass deleted, by kind."""

    sessions: int  # expired, idle too long, or a handoff code not redeemed in time
    pending_sign_ins: int
    failed_attempts: int

    @property
    def total(self) -> int:
        return self.sessions + self.pending_sign_ins + self.failed_attempts


def prune(*, scopes: Scopes) -> Pruned:
    """One scheduled pass of `prune_expired`, in its own transaction."""
    return scopes.writing(lambda session: prune_expired(session=session))


def prune_expired(*, session: Session) -> Pruned:
    """Delete every row that can never count again (write); nothing still valid is touched."""
    return Pruned(
        sessions=sessions.prune(session=session),
        pending_sign_ins=two_factor.prune(session=session),
        failed_attempts=attempts.prune(session=session),
    )
