"""`/login`: email and password, with the per-email lockout."""

from fastapi.responses import RedirectResponse
from nicegui import ui

from services.db import write_scope
from services.errors import InvalidCredentials, PermissionDenied
from services.identity import auth, single_sign_on
from ui import actions, oidc_routes, open_pages, session, sign_in_binding, theme
from ui.components.forms import form_message, password_input
from ui.components.passkeys import passkey_sign_in_button
from ui.components.single_sign_on import sign_in_button
from ui.pages.two_factor import after_password

SIGNED_OUT_EVERYWHERE = 'everywhere'
SIGNED_OUT_EVERYWHERE_NOTICE = 'You are signed out everywhere: every browser signed in to your account, this one too.'


@ui.page('/login')
async def login_page(
    redirect_to: str = '/',
    removed: str | None = None,
    sig: str | None = None,
    signed_out: str | None = None,
    notice: str | None = None,
) -> RedirectResponse | None:
    target = session.safe_redirect_target(redirect_to)
    if await actions.read(lambda db: auth.setup_needed(session=db)):
        return RedirectResponse('/setup')
    provider_notice = oidc_routes.notice_from(notice)  # what single sign-on came back with (a refusal, an outage)
    if await actions.signed_in_user() is not None:
        if provider_notice is None:
            return RedirectResponse(target)
        with theme.narrow_card('Single sign-on'):  # `Confirm with …` did not confirm: say why, then go back
            ui.label(provider_notice).props('role=alert').classes('text-body1').mark('provider-notice')
            ui.link('Back', target)
        return None
    removed_from = open_pages.removed_notice(removed, sig)  # sent here by an admin's `Hold to Remove`
    # Someone just removed is not welcomed back: the page says what happened, and signing in is for another account.
    title = 'Sign in' if removed_from else 'Welcome back'
    subtitle = None if removed_from else 'Sign in to manage your CX Toolbox organization.'
    with theme.narrow_card(title, subtitle):
        if removed_from:
            ui.label(removed_from).props('role=status').classes('text-body1 text-weight-medium').mark('removed-notice')
        elif signed_out == SIGNED_OUT_EVERYWHERE:  # after `Sign out everywhere` on the Security page
            ui.label(SIGNED_OUT_EVERYWHERE_NOTICE).props('role=status').classes('text-body1').mark('signed-out-notice')
        if provider_notice is not None:
            ui.label(provider_notice).props('role=alert').classes('text-body1 text-negative').mark('provider-notice')
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
            sign_in_binding.go(destination)

        ip, agent = session.client_ip(), session.user_agent()
        password.on('keydown.enter', sign_in)
        button = ui.button('Sign in', on_click=sign_in).props('no-caps').classes('w-full')
        ui.link('Forgot password?', '/forgot-password').classes('text-sm')
        passkey_sign_in_button(target)
        sign_in_button(target)  # `Sign in with <name>`, when single sign-on is configured
    return None


def _authenticate(email: str, password: str, ip: str | None, user_agent: str | None, target: str) -> str:
    """Read the account, check the password outside any transaction (bcrypt), then record the outcome and start a
    session; returns where the browser goes next: the session's start, or the second step (`ui/pages/two_factor.py`)
    for an account with a second factor."""
    with write_scope() as db:  # the attempt is counted before bcrypt runs, so parallel guesses cannot race it
        attempt = auth.begin_sign_in(session=db, email=email, ip=ip)
    password_ok = auth.check_attempt_password(attempt, password)
    if password_ok and attempt.user_id is not None:  # single sign-on required: members use it, admins are audited
        with write_scope() as db:
            refusal = single_sign_on.password_sign_in_refusal(session=db, user_id=attempt.user_id, ip=ip)
        if refusal is not None:
            raise PermissionDenied(refusal)
    with write_scope() as db:
        user = auth.finish_sign_in(session=db, attempt=attempt, password_ok=password_ok)
        destination = after_password(db, user, ip, user_agent, target) if user is not None else None
    if destination is None:
        raise InvalidCredentials()
    return destination
