"""`/login`: email and password, with the per-email lockout."""

from fastapi.responses import RedirectResponse
from nicegui import ui

from services import auth, sessions
from services.db import write_scope
from services.errors import InvalidCredentials
from ui import actions, session, theme


@ui.page('/login')
async def login_page(redirect_to: str = '/') -> RedirectResponse | None:
    target = session.safe_redirect_target(redirect_to)
    if await actions.read(lambda db: auth.setup_needed(session=db)):
        return RedirectResponse('/setup')
    if await actions.signed_in_user() is not None:
        return RedirectResponse(target)
    with theme.narrow_card('Welcome back', 'Sign in to manage your CX Toolbox organization.'):
        email = ui.input('Email').props('type=email autocomplete=username autofocus maxlength=254').classes('w-full')
        password = ui.input('Password', password=True, password_toggle_button=True)
        password.props('autocomplete=current-password maxlength=72').classes('w-full')
        message = ui.label().classes('text-negative text-sm').mark('login-error')
        message.set_visibility(False)

        async def sign_in() -> None:
            entered = email.value or '', password.value or ''
            handoff = await actions.submit(lambda: _authenticate(*entered, ip, agent), button=button, message=message)
            if handoff is None:
                password.value = ''
                return
            ui.navigate.to(session.start_url(handoff, target))

        ip, agent = session.client_ip(), session.user_agent()
        password.on('keydown.enter', sign_in)
        button = ui.button('Sign in', on_click=sign_in).props('no-caps').classes('w-full')
        ui.link('Forgot password?', '/forgot-password').classes('text-sm')
    return None


def _authenticate(email: str, password: str, ip: str | None, user_agent: str | None) -> str:
    """Read the account, check the password outside any transaction (bcrypt), then record the outcome and start a
    session; returns the session's handoff code."""
    with write_scope() as db:  # the attempt is counted before bcrypt runs, so parallel guesses cannot race it
        attempt = auth.begin_sign_in(session=db, email=email, ip=ip)
    password_ok = auth.check_attempt_password(attempt, password)
    with write_scope() as db:
        user = auth.finish_sign_in(session=db, attempt=attempt, password_ok=password_ok)
        handoff = sessions.start(session=db, user=user, ip=ip, user_agent=user_agent) if user else None
    if handoff is None:
        raise InvalidCredentials()
    return handoff
