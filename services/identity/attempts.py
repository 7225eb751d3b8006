"""Password attempts, throttled so they cannot be raced or turned against the account's owner.

Each attempt claims its place before bcrypt runs (a `LoginFailure` row written in the same transaction that counts
the earlier ones), so concurrent guesses never get past a limit; a successful attempt deletes its claim again.
Failures count three ways within 15 minutes:

- per account and client address together: 5 lock that pair (what a person mistyping hits);
- per client address across all accounts: 30 (password spraying from one address);
- per account across all addresses: 50 (distributed guessing), high enough that a stranger's five guesses from
  elsewhere never lock the owner out.

Passwords, second-factor codes and passkeys are counted apart (`Throttle`), under keys nobody can reach by typing:
what is typed into `Email` is a password key, and a password key never contains a colon (no account's address
does: one that has one is kept as `password:<typed>`), while every other throttle's key is `<throttle>:<subject>`.
"""

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from models import LoginFailure
from models.base import utcnow
from services import db
from services.errors import LoginLocked

WINDOW = timedelta(minutes=15)
PAIR_LIMIT = 5
ADDRESS_LIMIT = 30
ACCOUNT_LIMIT = 50
KEEP = timedelta(days=1)


class Throttle(StrEnum):
    """What is counted: each has its own keys, so failures of one never lock another."""

    PASSWORD = 'password'  # subject: the email as typed (normalized)
    SECOND_FACTOR = 'second-factor'  # subject: the account's email
    PASSKEY = 'passkey'  # subject: the client address (a passkey sign-in names no account)


def throttle_key(throttle: Throttle, subject: str) -> str:
    """The stored key: a password's is the email itself (as before), unless it has a colon; every other key is
    `<throttle>:<subject>`, so no typed text equals another throttle's key."""
    if throttle == Throttle.PASSWORD and ':' not in subject:
        return subject
    return f'{throttle.value}:{subject}'


def claim(*, session: Session, email: str, ip: str | None, throttle: Throttle = Throttle.PASSWORD) -> int:
    """Count an attempt for `email` (the throttle's subject) from `ip` before its password is checked; raises
    LoginLocked when a limit is reached (nothing is written then). Returns the claim's id, for `succeeded`."""
    email = throttle_key(throttle, email)
    _serialize(session=session, email=email)
    now = utcnow()
    since = now - WINDOW
    recent = select(LoginFailure.created_at).where(col(LoginFailure.created_at) > since)
    groups = [(recent.where(LoginFailure.email == email), ACCOUNT_LIMIT)]
    if ip:
        groups.append((recent.where(LoginFailure.email == email, LoginFailure.ip == ip), PAIR_LIMIT))
        groups.append((recent.where(LoginFailure.ip == ip), ADDRESS_LIMIT))
    else:
        groups.append((recent.where(LoginFailure.email == email), PAIR_LIMIT))
    for statement, limit in groups:
        # The limit-th newest failure is the one that has to leave the window before another attempt is allowed.
        blocking = session.exec(
            statement.order_by(col(LoginFailure.created_at).desc()).offset(limit - 1).limit(1)
        ).first()
        if blocking is not None:
            raise LoginLocked(_minutes_until(blocking + WINDOW, now))
    attempt = LoginFailure(email=email, ip=ip, created_at=now)
    session.add(attempt)
    session.flush()
    assert attempt.id is not None
    return attempt.id


def succeeded(
    *, session: Session, claim_id: int, email: str, ip: str | None, throttle: Throttle = Throttle.PASSWORD
) -> None:
    """The password was right: the claim and the earlier failures of this account from this address go."""
    email = throttle_key(throttle, email)
    session.exec(delete(LoginFailure).where(col(LoginFailure.id) == claim_id))
    session.exec(
        delete(LoginFailure).where(
            col(LoginFailure.email) == email, col(LoginFailure.ip) == ip if ip else col(LoginFailure.ip).is_(None)
        )
    )


def locked_emails(*, session: Session, emails: list[str]) -> set[str]:
    """Which of `emails` cannot sign in right now from at least one address (or at all)."""
    emails = [email for email in emails if ':' not in email]  # not an address: never locked
    if not emails:
        return set()
    since = utcnow() - WINDOW
    per_pair = session.exec(
        select(LoginFailure.email)
        .where(col(LoginFailure.email).in_(emails), col(LoginFailure.created_at) > since)
        .group_by(col(LoginFailure.email), col(LoginFailure.ip))
        .having(func.count() >= PAIR_LIMIT)
    ).all()
    return set(per_pair)


def unlock(*, session: Session, email: str, throttle: Throttle = Throttle.PASSWORD) -> int:
    """Forget every recent failure of `email`; returns how many there were."""
    email = throttle_key(throttle, email)
    return session.exec(delete(LoginFailure).where(col(LoginFailure.email) == email)).rowcount


def prune(*, session: Session) -> int:
    """Delete failures older than a day (the windows are 15 minutes); returns how many."""
    return session.exec(delete(LoginFailure).where(col(LoginFailure.created_at) < utcnow() - KEEP)).rowcount


def _serialize(*, session: Session, email: str) -> None:
    """Attempts for one account take turns, so counting and claiming (and the clock they read) is one step."""
    db.lock(session=session, name=f'sign-in:{email}')


def _minutes_until(moment: datetime, now: datetime) -> int:
    return max(1, int(-(-(moment - now).total_seconds() // 60)))
