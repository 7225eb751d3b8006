"""Wrong codes at the second step wear the account's codes out: after enough of them the password no longer leads
anywhere (codes are locked until the password is reset, or an admin or the operator resets the second factor), and
the owner is mailed on the first burst.

Why: whoever tries codes already knows the password. The per-address and per-account throttles
(`services/identity/attempts.py`) only slow them down; over weeks they would still get through (a few thousand guesses a
day). This count does not forget on a timer: wrong codes add up over a window of 30 days from the first one, a right
code does not clear them (or an attacker could interleave with the owner's sign-ins), and at `LOCK_AFTER` the codes
of the account are locked until the owner proves control of the mailbox (a password reset, which also changes the
password the attacker knows) or an admin resets the second factor. A passkey cannot be guessed, so it still signs in.

The mails are sent after the transaction that counted the failure commits (a rollback sends nothing), on one
background thread; without a mail server nothing is sent and the Activity entries are the record.
"""

import html
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, delete

from models import CodeLock, User
from models.base import utcnow
from services import mail
from services.config import current_settings

log = logging.getLogger(__name__)

WINDOW = timedelta(days=30)
MAIL_AFTER = 5  # the first burst: the owner hears of it
LOCK_AFTER = 20  # then the password alone leads nowhere

LOCKED = (
    'Too many wrong codes were entered for this account, so codes no longer sign it in. Reset your password with '
    '"Forgot password?" on the sign-in page (or ask an admin to reset your two-factor authentication), then sign in '
    'with your new password and a code.'
)

_SESSION_KEY = 'cxt_code_lock_mail'
_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix='code-lock-mail')


def is_locked(*, session: Session, user_id: int | None) -> bool:
    """The account's codes are locked (a passkey still signs in)."""
    row = session.get(CodeLock, user_id) if user_id is not None else None
    return row is not None and row.locked_at is not None


def count_failure(*, session: Session, user: User, ip: str | None) -> None:
    """One more wrong code for `user` (inside the transaction that records it): mails the owner on the first burst,
    and locks the codes at the limit."""
    assert user.id is not None
    now = utcnow()
    # Fresh under the row lock (`is_locked` may have read it before the throttle's lock was taken).
    row = session.get(CodeLock, user.id, with_for_update=True, populate_existing=True)
    if row is None:
        row = CodeLock(user_id=user.id, failures=0, window_started_at=now)
    elif row.locked_at is None and now - row.window_started_at >= WINDOW:
        row.failures, row.window_started_at, row.owner_told_at = 0, now, None
    row.failures += 1
    tell = None
    if row.failures >= LOCK_AFTER and row.locked_at is None:
        row.locked_at = now
        tell = _locked_mail
    elif row.failures >= MAIL_AFTER and row.owner_told_at is None:
        tell = _burst_mail
    if tell is not None:
        row.owner_told_at = now
        _send_after_commit(session, tell(user=user, failures=row.failures, ip=ip))
    session.add(row)


def clear(*, session: Session, user_id: int | None) -> None:
    """Forget the wrong codes and lift the lock: the password was reset (or changed by the signed-in owner), or the
    second factor was reset."""
    if user_id is not None:
        session.exec(delete(CodeLock).where(col(CodeLock.user_id) == user_id))


# --- the owner's mail -----------------------------------------------------------------------------------------


def _burst_mail(*, user: User, failures: int, ip: str | None) -> mail.Email | None:
    return _mail(
        user=user,
        subject='Wrong two-factor codes were entered for your account',
        what=f'{failures} wrong two-factor codes were entered for {user.email} after the right password',
        ip=ip,
        then=f'After {LOCK_AFTER} wrong codes, codes stop working until the password is reset.',
    )


def _locked_mail(*, user: User, failures: int, ip: str | None) -> mail.Email | None:
    return _mail(
        user=user,
        subject='Two-factor codes for your account are locked',
        what=f'{failures} wrong two-factor codes were entered for {user.email}, so codes no longer sign it in',
        ip=ip,
        then='To sign in again, reset your password (or ask an admin to reset your two-factor authentication). '
        'A passkey still signs you in.',
    )


def _mail(*, user: User, subject: str, what: str, ip: str | None, then: str) -> mail.Email | None:
    try:
        settings = current_settings()
    except RuntimeError:
        return None
    if not settings.mail_configured:
        return None
    reset = f'{settings.resolved_public_url}/forgot-password'
    when = utcnow().strftime('%Y-%m-%d %H:%M:%S UTC')
    source = ip or 'an unknown address'
    text = (
        f'{what} on the CX Toolbox Dashboard (last from {source}, {when}).\n\n'
        'If this was not you, someone knows your password. Reset it now: '
        f'{reset}\n\n{then}\n'
    )
    e = html.escape
    body = (
        f'<p><strong>{e(what)}</strong> on the CX Toolbox Dashboard (last from {e(source)}, {e(when)}).</p>'
        f'<p>If this was not you, someone knows your password. <a href="{e(reset)}">Reset it now</a>.</p>'
        f'<p>{e(then)}</p>'
    )
    return mail.Email(to=user.email, subject=subject, text=text, html=f'<html><body>{body}</body></html>')


def _send_after_commit(session: Session, message: mail.Email | None) -> None:
    if message is not None:
        session.info.setdefault(_SESSION_KEY, []).append(message)


def _after_commit(session: OrmSession) -> None:
    messages: list[mail.Email] = session.info.pop(_SESSION_KEY, [])
    if messages:
        _worker.submit(_send_all, messages)


def _after_rollback(session: OrmSession, *_: Any) -> None:
    session.info.pop(_SESSION_KEY, None)


def _send_all(messages: list[mail.Email]) -> None:
    for message in messages:
        try:
            mail.send_email(message)
        except Exception as error:  # a mail that fails is logged; the count and the lock stay
            log.warning('Mail about wrong two-factor codes to %s not sent: %s', message.to, error)


def wait_until_sent(timeout: float = 30.0) -> None:
    """Block until every mail handed over so far has been sent or has failed (tests, shutdown)."""
    future: Future[None] = _worker.submit(lambda: None)
    future.result(timeout=timeout)


for _name, _listener in (('after_commit', _after_commit), ('after_rollback', _after_rollback)):
    if not event.contains(OrmSession, _name, _listener):
        event.listen(OrmSession, _name, _listener)
