"""`/login`: email and password, with the per-email lockout."""

from fastapi.responses import RedirectResponse
from nicegui import ui

from services.acting import SCOPES
from services.identity import auth, sign_in
from ui import actions, oidc_routes, open_pages, session, sign_in_binding, theme
from ui.components.forms import form_message, password_input
from ui.components.single_sign_on import sign_in_button
from ui.sections.passkeys import passkey_sign_in_button

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

        async def sign_in_with_password() -> None:
            entered_email, entered_password = email.value or '', password.value or ''
            next_step = await actions.submit(
                lambda: sign_in.sign_in_with_password(
                    scopes=SCOPES, email=entered_email, password=entered_password, ip=ip, user_agent=agent
                ),
                button=button,
                message=message,
            )
            if next_step is None:
                password.value = ''
                password.run_method('focus')  # where the next try starts (the message is announced meanwhile)
                return
            sign_in_binding.go(session.next_url(next_step, target))

        ip, agent = session.client_ip(), session.user_agent()
        password.on('keydown.enter', sign_in_with_password)
        button = ui.button('Sign in', on_click=sign_in_with_password).props('no-caps').classes('w-full')
        ui.link('Forgot password?', '/forgot-password').classes('text-sm')
        passkey_sign_in_button(target)
        sign_in_button(target)  # `Sign in with <name>`, when single sign-on is configured
    return None
