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
from services import auth
from services.db import describe_failure, read_scope, write_scope
from services.errors import ServiceError, ValidationFailed
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
    user = await signed_in_user_or_leave()
    if user is None:
        return None
    if recent_password and not await confirm_recent_password(user):
        return None
    actor = Actor(user=user, ip=session.client_ip(), password_confirmed_at=session.password_confirmed_at())
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


async def signed_in_user() -> User | None:
    """The signed-in user, checked against the database (None once their session has ended)."""
    user_id, version = session.stored_identity()
    if user_id is None or version is None:
        return None
    return await read(lambda db: auth.load_session_user(session=db, user_id=user_id, session_version=version))


async def signed_in_user_or_leave() -> User | None:
    """For event handlers: the signed-in user, or None after sending this page to `/login`."""
    user = await signed_in_user()
    if user is None:
        session.sign_out()
        ui.navigate.to('/login')
    return user


async def confirm_recent_password(user: User) -> bool:
    """Ask for the password again when the last entry is over 10 minutes old; True once confirmed."""
    if session.password_is_recent():
        return True
    with ui.dialog() as dialog, ui.card().classes('w-full max-w-sm'):
        ui.label('Confirm your password').classes('text-lg font-medium')
        ui.label('This action needs your password again.').classes('text-sm text-grey-8')
        password = ui.input('Password', password=True, password_toggle_button=True).mark('sudo-password')
        password.classes('w-full')
        password.props('autofocus autocomplete=current-password')

        async def confirm() -> None:
            matches = await submit(lambda: _password_matches(user, password.value or ''), button=confirm_button)
            if matches:
                session.password_entered()
                dialog.submit(True)
            elif matches is not None:
                password.error = 'Wrong password'

        password.on('keydown.enter', confirm)
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat no-caps')
            confirm_button = ui.button('Confirm', on_click=confirm).props('no-caps').mark('confirm-password')
    confirmed = await dialog
    dialog.delete()
    return bool(confirmed)


def _password_matches(user: User, password: str) -> bool:
    with read_scope() as db:
        stored = auth.stored_password_hash(session=db, user=user)
    return stored is not None and auth.check_password(password, stored)


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
