"""One path for every user action: who acts, their password when needed, progress, the work off the event loop in a
transaction, and every failure told once.

A handler says only what is particular to it:

    plaintext = await actions.act(
        lambda db, me: api_keys.generate_key(session=db, actor=me.user, ip=me.ip), button=generate_button,
    )
    if plaintext is None:
        return  # refused or failed: the person has been told why

`act` runs one transaction; `act_stepwise` runs work that takes several (bcrypt, SMTP or Stripe between them, see
`services/db.py`); `submit` is the same path for forms whose person is not signed in (sign-in, setup, invitations,
password reset); `read` loads what a page shows.
"""

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from nicegui import run, ui
from sqlmodel import Session

from models import User
from models.base import utcnow
from services import auth, sessions
from services.db import describe_failure, read_scope, write_scope
from services.errors import ServiceError, ValidationFailed
from services.permissions import SUDO_WINDOW
from ui import session
from ui.components.busy import busy
from ui.components.forms import clear_field_errors, show_field_error

T = TypeVar('T')
log = logging.getLogger(__name__)

UNEXPECTED = 'Something went wrong on the server. Nothing was changed; please try again.'


@dataclass(frozen=True)
class Actor:
    """Who acts, as the services want it: the signed-in user, their address and their last password entry."""

    user: User
    ip: str | None
    password_confirmed_at: datetime | None
    session_id: int


async def act(
    change: Callable[[Session, Actor], T],
    *,
    button: ui.button | None = None,
    fields: Mapping[str, ui.element] | None = None,
    recent_password: bool = False,
    read_only: bool = False,
) -> T | None:
    """Run `change` for the signed-in user in one transaction off the event loop (a read transaction when
    `read_only`); its result, or None once the person has been told why not."""

    def in_transaction(actor: Actor) -> T:
        with read_scope() if read_only else write_scope() as db:
            return change(db, actor)

    return await act_stepwise(in_transaction, button=button, fields=fields, recent_password=recent_password)


async def act_stepwise(
    work: Callable[[Actor], T],
    *,
    button: ui.button | None = None,
    fields: Mapping[str, ui.element] | None = None,
    recent_password: bool = False,
) -> T | None:
    """Like `act`, for work that opens its own scopes, one per step (a slow call between them)."""
    signed = await signed_in_or_leave()
    if signed is None:
        return None
    password_confirmed_at = signed.password_confirmed_at
    if recent_password and not _is_recent(password_confirmed_at):
        password_confirmed_at = await confirm_password(signed)
        if password_confirmed_at is None:
            return None
    actor = Actor(
        user=signed.user,
        ip=session.client_ip(),
        password_confirmed_at=password_confirmed_at,
        session_id=signed.session_id,
    )
    return await _perform(lambda: work(actor), button=button, fields=fields)


async def submit(
    work: Callable[[], T],
    *,
    button: ui.button | None = None,
    fields: Mapping[str, ui.element] | None = None,
    message: ui.label | None = None,
) -> T | None:
    """The action path for a form whose person is not signed in: progress, off the loop, errors told once (in
    `message` under the form, when given, instead of a notification)."""
    return await _perform(work, button=button, fields=fields, message=message)


async def read(query: Callable[[Session], T]) -> T:
    """What a page shows, read in one read transaction off the event loop (it never waits for a writer)."""

    def in_transaction() -> T:
        with read_scope() as db:
            return query(db)

    return await off_loop(in_transaction)


async def off_loop(work: Callable[[], T]) -> T:
    """`work` on a worker thread; cancelled instead of returning nothing when the server is shutting down."""
    boxed = await run.io_bound(_boxed, work)
    if boxed is None:  # NiceGUI refuses new work while it shuts down
        raise asyncio.CancelledError
    return boxed[0]


def _boxed(work: Callable[[], T]) -> tuple[T]:
    return (work(),)


async def signed_in() -> sessions.SignedIn | None:
    """This page's session, checked against the database (None once it has ended anywhere)."""
    token = session.browser_token()
    if token is None:
        return None
    signed = await read(lambda db: sessions.signed_in(session=db, token=token))
    if signed is not None and signed.stale:
        await off_loop(lambda: _touch(signed.session_id))
    return signed


def _touch(session_id: int) -> None:
    with write_scope() as db:
        sessions.touch(session=db, session_id=session_id)


async def signed_in_user() -> User | None:
    """For pages: the signed-in user, or None."""
    signed = await signed_in()
    return signed.user if signed is not None else None


async def signed_in_or_leave() -> sessions.SignedIn | None:
    """For event handlers: this page's session, or None after sending the page to `/login`."""
    signed = await signed_in()
    if signed is None:
        ui.navigate.to('/login')
    return signed


async def sign_out() -> None:
    """End this browser's session (everywhere: it is a row in the database) and go to `/login`."""
    token = session.browser_token()
    await submit(lambda: _end_session(token))
    ui.navigate.to('/login')


def _end_session(token: str | None) -> None:
    with write_scope() as db:
        sessions.end(session=db, token=token)


async def confirm_recent_password() -> bool:
    """Ask for the password again when the last entry in this session is over 10 minutes old; True once confirmed."""
    signed = await signed_in_or_leave()
    if signed is None:
        return False
    return _is_recent(signed.password_confirmed_at) or await confirm_password(signed) is not None


def _is_recent(password_confirmed_at: datetime | None) -> bool:
    return password_confirmed_at is not None and utcnow() - password_confirmed_at < SUDO_WINDOW


async def confirm_password(signed: sessions.SignedIn) -> datetime | None:
    """The `Confirm your password` dialog; the new password time of this session once confirmed, else None."""
    ip = session.client_ip()
    with ui.dialog() as dialog, ui.card().classes('w-full max-w-sm'):
        ui.label('Confirm your password').classes('text-lg font-medium')
        ui.label('This action needs your password again.').classes('text-sm text-grey-8')
        password = ui.input('Password', password=True, password_toggle_button=True).mark('sudo-password')
        password.classes('w-full')
        password.props('autofocus autocomplete=current-password maxlength=72')

        async def confirm() -> None:
            entered = password.value or ''
            confirmed_at = await submit(
                lambda: _confirm_password(signed, entered, ip), button=confirm_button, fields={'password': password}
            )
            if confirmed_at is not None:
                dialog.submit(confirmed_at)

        password.on('keydown.enter', confirm)
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat no-caps')
            confirm_button = ui.button('Confirm', on_click=confirm).props('no-caps').mark('confirm-password')
    confirmed_at = await dialog
    dialog.delete()
    return confirmed_at if isinstance(confirmed_at, datetime) else None


def password_is_right(user: User, password: str, ip: str | None) -> bool:
    """Re-check the signed-in person's password: counted (throttled like a sign-in) before bcrypt, which runs outside
    any transaction; a wrong one is audited. Runs off the loop (inside `submit`/`act_stepwise` work)."""
    with write_scope() as db:
        attempt = auth.begin_password_confirmation(session=db, user=user, ip=ip)
    password_ok = auth.check_attempt_password(attempt, password)
    with write_scope() as db:
        return auth.finish_password_confirmation(session=db, attempt=attempt, password_ok=password_ok, user=user)


def _confirm_password(signed: sessions.SignedIn, password: str, ip: str | None) -> datetime:
    """The password again, right: this session's password time is renewed."""
    if not password_is_right(signed.user, password, ip):
        raise ValidationFailed('Wrong password', field='password')
    with write_scope() as db:
        return sessions.password_entered(session=db, session_id=signed.session_id)


async def _perform(
    work: Callable[[], T],
    *,
    button: ui.button | None,
    fields: Mapping[str, ui.element] | None,
    message: ui.label | None = None,
) -> T | None:
    fields = fields or {}
    clear_field_errors(fields)
    if message is not None:
        message.set_visibility(False)
    with busy(button) if button is not None else nullcontext(), _told_once(fields, message):
        return await off_loop(work)
    return None  # a failure was shown


@contextmanager
def _told_once(fields: Mapping[str, ui.element], message: ui.label | None) -> Iterator[None]:
    """Every failure of an action, shown to the person once: at its field, under the form, or in a notification."""
    try:
        yield
    except ValidationFailed as error:
        show_field_error(fields, error.field, str(error))
    except ServiceError as error:
        if message is not None:
            message.set_text(str(error))
            message.set_visibility(True)
        else:
            ui.notify(str(error), type='negative', multi_line=True)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        said = describe_failure(error)
        if said is None:
            log.exception('action failed')
        else:
            log.warning('%s (%s: %s)', said, type(error).__name__, error)
        ui.notify(said or UNEXPECTED, type='negative', multi_line=True, close_button='OK', timeout=0)
