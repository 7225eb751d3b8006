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
from datetime import datetime
from typing import TypeVar

from nicegui import context, run, ui
from sqlmodel import Session

from models import User
from services.acting import SCOPES, Actor, describe_failure
from services.errors import ServiceError, ValidationFailed
from services.identity import account, sessions, single_sign_on
from services.permissions import password_is_recent
from ui import open_pages, session
from ui.components import single_sign_on as single_sign_on_buttons
from ui.components.busy import busy
from ui.components.dialogs import dialog_card
from ui.components.forms import (
    clear_field_errors,
    focus_first_invalid,
    notify_error,
    password_input,
    show_field_error,
)

T = TypeVar('T')
log = logging.getLogger(__name__)

UNEXPECTED = 'Something went wrong on the server. Nothing was changed; please try again.'


async def act(
    change: Callable[[Session, Actor], T],
    *,
    button: ui.button | None = None,
    fields: Mapping[str, ui.element] | None = None,
    recent_password: bool = False,
    read_only: bool = False,
    purpose: str | None = None,
) -> T | None:
    """Run `change` for the signed-in user in one transaction off the event loop (a read transaction when
    `read_only`); its result, or None once the person has been told why not. With `recent_password`, a password
    entry over 10 minutes old is asked for again; `purpose` completes the dialog's title, e.g. `reveal the API key`
    gives `Confirm your password to reveal the API key`."""

    def in_transaction(actor: Actor) -> T:
        with SCOPES.read() if read_only else SCOPES.write() as db:
            return change(db, actor)

    return await act_stepwise(
        in_transaction, button=button, fields=fields, recent_password=recent_password, purpose=purpose
    )


async def act_stepwise(
    work: Callable[[Actor], T],
    *,
    button: ui.button | None = None,
    fields: Mapping[str, ui.element] | None = None,
    recent_password: bool = False,
    purpose: str | None = None,
) -> T | None:
    """Like `act`, for work that opens its own scopes, one per step (a slow call between them)."""
    signed = await signed_in_or_leave()
    if signed is None:
        return None
    # Asked here only to spare the person a refusal: each service checks the session's password entry itself.
    if (
        recent_password
        and not password_is_recent(signed.password_confirmed_at)
        and await confirm_password(signed, purpose=purpose) is None
    ):
        return None
    actor = Actor(user=signed.user, ip=session.client_ip(), session_id=signed.session_id)
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

    return await off_loop(lambda: SCOPES.reading(query))


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
        await off_loop(lambda: account.keep_alive(scopes=SCOPES, session_id=signed.session_id))
    return signed


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
    await submit(lambda: account.sign_out(scopes=SCOPES, token=token))
    ui.navigate.to('/login')


async def confirm_recent_password(purpose: str | None = None) -> bool:
    """Ask for the password again when the last entry in this session is over 10 minutes old; True once confirmed.
    `purpose` says what for in the dialog's title (`rotate the API key`: `Confirm your password to rotate the API
    key`)."""
    signed = await signed_in_or_leave()
    if signed is None:
        return False
    return (
        password_is_recent(signed.password_confirmed_at) or await confirm_password(signed, purpose=purpose) is not None
    )


def confirm_password_title(purpose: str | None = None) -> str:
    return f'Confirm your password to {purpose}' if purpose else 'Confirm your password'


async def confirm_password(signed: sessions.SignedIn, *, purpose: str | None = None) -> datetime | None:
    """The `Confirm your password [to <purpose>]` dialog, named by that title; the new password time of this session
    once confirmed, else None. Closing it gives the focus back to the control that opened it."""
    if not single_sign_on.has_password(signed.user) and single_sign_on_buttons.configured():
        return await _confirm_with_provider(purpose)
    actor = Actor(user=signed.user, ip=session.client_ip(), session_id=signed.session_id)
    with dialog_card(confirm_password_title(purpose), width='max-w-sm') as dialog:
        ui.label('It has been more than 10 minutes since you last entered your password.').classes(
            'text-sm text-grey-8'
        )
        password = password_input('Password').mark('sudo-password')
        password.props('autofocus')

        async def confirm() -> None:
            entered = password.value or ''
            confirmed_at = await submit(
                lambda: account.confirm_password(scopes=SCOPES, actor=actor, password=entered),
                button=confirm_button,
                fields={'password': password},
            )
            if confirmed_at is not None:
                dialog.submit(confirmed_at)

        password.on('keydown.enter', confirm)
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat no-caps')
            confirm_button = ui.button('Confirm', on_click=confirm).props('no-caps').mark('confirm-password')
    confirmed_at = await dialog
    return confirmed_at if isinstance(confirmed_at, datetime) else None


async def _confirm_with_provider(purpose: str | None) -> None:
    """For someone without a password here: `Confirm with <name>`, a fresh sign-in at the identity provider, which
    brings this page back with the confirmation recorded (the person then repeats the action)."""
    request = context.client.request
    here = request.url.path + (f'?{request.url.query}' if request.url.query else '') if request is not None else '/'
    with dialog_card(confirm_password_title(purpose), width='max-w-sm') as dialog:
        name = single_sign_on_buttons.provider_name()
        ui.label(
            f'It has been more than 10 minutes since you last signed in. Sign in again with {name}, then repeat '
            'what you were doing.'
        ).classes('text-sm text-grey-8')
        single_sign_on_buttons.confirm_button(here)
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat no-caps')
    await dialog
    return None


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
    with busy(button) if button is not None else nullcontext(), _told_once(fields, message), open_pages.acting():
        return await off_loop(work)
    return None  # a failure was shown


@contextmanager
def _told_once(fields: Mapping[str, ui.element], message: ui.label | None) -> Iterator[None]:
    """Every failure of an action, shown to the person once: at its field, under the form, or in a notification."""
    try:
        yield
    except ValidationFailed as error:
        for field, said in error.errors.items():  # every invalid field at once
            show_field_error(fields, field, said)
        focus_first_invalid(fields)  # the button that was pressed is disabled meanwhile: focus goes where work is
    except ServiceError as error:
        if message is not None:
            message.set_text(str(error))
            message.set_visibility(True)
        else:
            notify_error(str(error))
    except asyncio.CancelledError:
        raise
    except Exception as error:
        said = describe_failure(error)
        if said is None:
            log.exception('action failed')
        else:
            log.warning('%s (%s: %s)', said, type(error).__name__, error)
        notify_error(said or UNEXPECTED)
