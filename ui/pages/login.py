"""`/login`: email and password, with the per-email lockout."""

from fastapi.responses import RedirectResponse
from nicegui import ui

from services import auth
from services.db import write_scope
from services.errors import InvalidCredentials
from ui import actions, open_pages, session, theme
from ui.components.forms import form_message, password_input
from ui.components.passkeys import passkey_sign_in_button
from ui.pages.two_factor import after_password


@ui.page('/login')
async def login_page(
    redirect_to: str = '/', removed: str | None = None, sig: str | None = None
) -> RedirectResponse | None:
    target = session.safe_redirect_target(redirect_to)
    if await actions.read(lambda db: auth.setup_needed(session=db)):
        return RedirectResponse('/setup')
    if await actions.signed_in_user() is not None:
        return RedirectResponse(target)
    with theme.narrow_card('Welcome back', 'Sign in to manage your CX Toolbox organization.'):
        if notice := open_pages.removed_notice(removed, sig):  # sent here by an admin's `Hold to Remove`
            ui.label(notice).props('role=status').classes('text-body1 text-weight-medium').mark('removed-notice')
        email = ui.input('Email').props('type=email autocomplete=username autofocus maxlength=254').classes('w-full')
        password = password_input('Password')
        message = form_message().mark('login-error')  # `Invalid email or password`, the lockout: announced

        async def sign_in() -> None:
            entered = email.value or '', password.value or ''
            destination = await actions.submit(
                lambda: _authenticate(*entered, ip, agent, target), button=button, message=message
            )
            if destination is None:
                password.value = ''
                password.run_method('focus')  # where the next try starts (the message is announced meanwhile)
                return
            ui.navigate.to(destination)

        ip, agent = session.client_ip(), session.user_agent()
        password.on('keydown.enter', sign_in)
        button = ui.button('Sign in', on_click=sign_in).props('no-caps').classes('w-full')
        ui.link('Forgot password?', '/forgot-password').classes('text-sm')
        passkey_sign_in_button(target)
    return None


def _authenticate(email: str, password: str, ip: str | None, user_agent: str | None, target: str) -> str:
    """Read the account, check the password outside any transaction (bcrypt), then record the outcome and start a
    session; returns where the browser goes next: the session's start, or the second step (`ui/pages/two_factor.py`)
    for an account with a second factor."""
    with write_scope() as db:  # the attempt is counted before bcrypt runs, so parallel guesses cannot race it
        attempt = auth.begin_sign_in(session=db, email=email, ip=ip)
    password_ok = auth.check_attempt_password(attempt, password)
    with write_scope() as db:
        user = auth.finish_sign_in(session=db, attempt=attempt, password_ok=password_ok)
        destination = after_password(db, user, ip, user_agent, target) if user is not None else None
    if destination is None:
        raise InvalidCredentials()
    return destination
