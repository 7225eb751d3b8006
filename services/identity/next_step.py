"""Where a person goes once their password is right: a session, or the second step.

Every path that ends with a right password (sign-in, a password reset, an accepted invitation) asks this one module,
which asks the one rule (`two_factor.password_is_enough`, built on `two_factor.has_second_factor`): a password alone
never signs in an account with a second factor, nor one whose organization requires a second factor it has not set up.
"""

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session

from models import User
from services.identity import sessions, two_factor


class NextStep(StrEnum):
    """What the browser is sent to with the handoff code: the session's start, or the second step's start."""

    SESSION = 'session'
    SECOND_STEP = 'second step'


@dataclass(frozen=True)
class Next:
    """A sign-in's outcome for the browser: which start route, and the one-time code it trades there for a cookie."""

    step: NextStep
    handoff: str


def session_started(handoff: str) -> Next:
    """A session was started; its handoff code."""
    return Next(step=NextStep.SESSION, handoff=handoff)


def after_password(*, session: Session, user: User, ip: str | None, user_agent: str | None) -> Next:
    """The right password was entered for `user` (inside the caller's transaction): a pending sign-in when a second
    step is needed, else a new session."""
    if not two_factor.password_is_enough(session=session, user=user):
        return Next(
            step=NextStep.SECOND_STEP,
            handoff=two_factor.begin_pending(session=session, user=user, ip=ip, user_agent=user_agent),
        )
    return session_started(sessions.start(session=session, user=user, ip=ip, user_agent=user_agent))
