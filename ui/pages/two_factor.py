"""The sign-in step after a right password: `/login/code` (a code from the authenticator app, a recovery code, or one
of the account's passkeys: any account with a second factor presents one) and `/login/set-up-two-factor` (the
organization requires a second factor and this account has none at all).

The password step cannot set a cookie (it runs over the page socket), so it sends the browser through
`/login/code/start` with a one-time handoff code, which this route trades for the pending sign-in's own cookie (like
`/session/start` does for a session). Until the second step succeeds there is no session.
"""

from collections.abc import Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from starlette.concurrency import run_in_threadpool

from services.acting import SCOPES
from services.config import current_settings
from services.identity import code_lock, passkeys, sign_in, two_factor
from ui import actions, session, sign_in_binding, theme
from ui.components.forms import form_message
from ui.sections.authenticator import AuthenticatorSetUp, code_input
from ui.sections.passkeys import PasskeySecondStepButton

PENDING_COOKIE = 'cxt_pending_sign_in'
START_PATH = session.SECOND_STEP_START_PATH
CODE_PATH = '/login/code'
SET_UP_PATH = '/login/set-up-two-factor'

router = APIRouter()


def _with_target(path: str, target: str, **extra: str) -> str:
    return f'{path}?{urlencode({**extra, "redirect_to": session.safe_redirect_target(target)})}'


@router.get(START_PATH, include_in_schema=False)
async def start_pending(request: Request, code: str = '', next: str = '/', bind: str = '') -> RedirectResponse:
    if not sign_in_binding.is_bound(request, code=code, bind=bind):
        return RedirectResponse('/login', status_code=303)  # a code handed to another browser: login CSRF

    token = await run_in_threadpool(lambda: sign_in.start_second_step(scopes=SCOPES, code=code))
    if token is None:
        return RedirectResponse('/login', status_code=303)
    response = RedirectResponse(_with_target(CODE_PATH, next), status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        two_factor.cookie_value(token),
        max_age=int(two_factor.PENDING_LIFETIME.total_seconds()),
        httponly=True,
        samesite='lax',
        secure=current_settings().resolved_public_url.startswith('https://'),
        path='/login',
    )
    return response


def _pending_token(request: Request) -> str | None:
    return two_factor.token_from_cookie(request.cookies.get(PENDING_COOKIE))


@ui.page(CODE_PATH)
async def code_page(request: Request, redirect_to: str = '/', recovery: bool = False) -> RedirectResponse | None:
    target = session.safe_redirect_target(redirect_to)
    token = _pending_token(request)
    step = await actions.read(lambda db: two_factor.pending_step(session=db, token=token))
    if step is None:
        return RedirectResponse('/login')
    if step.needs_set_up:
        return RedirectResponse(_with_target(SET_UP_PATH, target))
    recovery = recovery and step.codes_usable
    with theme.narrow_card(*_heading(step, recovery)):
        ui.label(f'Signing in as {step.email}').classes('text-sm text-grey-8')
        if step.has_app and step.codes_locked:
            ui.label(code_lock.LOCKED).props('role=alert').classes('text-negative text-sm').mark('codes-locked')
        elif step.codes_usable:
            _code_form(token, target, recovery=recovery)
        if step.has_passkey:
            _passkey_option(token, target)
        if step.codes_usable:
            _other_code_link(target, recovery=recovery)
        ui.link('Back to sign in', '/login').classes('text-sm')
    return None


def _passkey_option(token: str | None, target: str) -> None:
    if (reason := passkeys.unavailable_reason()) is None:
        PasskeySecondStepButton(token=token, target=target)
    else:
        ui.label(reason).classes('text-sm text-grey-8').mark('passkeys-unavailable')


def _other_code_link(target: str, *, recovery: bool) -> None:
    """From the authentication code to a recovery code, and back."""
    if recovery:
        ui.link('Use your authenticator app', _with_target(CODE_PATH, target)).classes('text-sm')
    else:
        ui.link('Use a recovery code', _with_target(CODE_PATH, target, recovery='true')).classes('text-sm')


def _heading(step: two_factor.PendingStep, recovery: bool) -> tuple[str, str]:
    """The second step's title and what it asks for, by the factors this account can present now."""
    if step.has_app and step.codes_locked:
        if step.has_passkey:
            return 'Two-factor authentication', 'Use your passkey to finish signing in.'
        return 'Two-factor authentication', 'Codes no longer sign this account in.'
    if recovery:
        return 'Use a recovery code', 'Enter one of the recovery codes you saved when you set up the app.'
    if step.has_app and step.has_passkey:
        return 'Two-factor authentication', 'Enter the 6-digit code from your authenticator app, or use a passkey.'
    if step.has_app:
        return 'Two-factor authentication', 'Enter the 6-digit code from your authenticator app.'
    return 'Two-factor authentication', 'Use your passkey to finish signing in.'


def _code_form(token: str | None, target: str, *, recovery: bool) -> None:
    """The code field and `Verify`: an authentication code, or a recovery code."""
    ip, agent = session.client_ip(), session.user_agent()
    code = code_input('Recovery code' if recovery else 'Authentication code', recovery=recovery)
    message = form_message().mark('code-error')

    async def verify() -> None:
        entered = code.value or ''
        next_step = await actions.submit(
            lambda: sign_in.sign_in_with_code(scopes=SCOPES, token=token, code=entered, ip=ip, user_agent=agent),
            button=button,
            fields={'code': code},
            message=message,
        )
        if next_step is not None:
            sign_in_binding.go(session.next_url(next_step, target))

    code.on('keydown.enter', verify)
    button = ui.button('Verify', on_click=verify).props('no-caps').classes('w-full')


@ui.page(SET_UP_PATH)
async def set_up_page(request: Request, redirect_to: str = '/') -> RedirectResponse | None:
    target = session.safe_redirect_target(redirect_to)
    token = _pending_token(request)
    step = await actions.read(lambda db: two_factor.pending_step(session=db, token=token))
    if step is None:
        return RedirectResponse('/login')
    if not step.needs_set_up:
        return RedirectResponse(_with_target(CODE_PATH, target))
    ip, agent = session.client_ip(), session.user_agent()
    with theme.narrow_card(
        'Set up two-factor authentication',
        'Your organization requires two-factor authentication. Set up an authenticator app to continue.',
    ):
        ui.label(f'Signing in as {step.email}').classes('text-sm text-grey-8')
        container = ui.column().classes('w-full gap-3')

        async def begin() -> two_factor.Enrolment | None:
            return await actions.submit(lambda: sign_in.begin_required_set_up(scopes=SCOPES, token=token))

        async def confirm(code: str, button: ui.button, fields: Mapping[str, ui.element]) -> list[str] | None:
            return await actions.submit(
                lambda: sign_in.confirm_required_set_up(scopes=SCOPES, token=token, code=code, ip=ip),
                button=button,
                fields=fields,
            )

        async def done() -> None:
            next_step = await actions.submit(
                lambda: sign_in.finish_required_set_up(scopes=SCOPES, token=token, ip=ip, user_agent=agent)
            )
            if next_step is not None:
                sign_in_binding.go(session.next_url(next_step, target))

        set_up = AuthenticatorSetUp(container, begin=begin, confirm=confirm, done=done, done_label='Continue')
        ui.link('Back to sign in', '/login').classes('text-sm')
    ui.timer(0, set_up.show, once=True)
    return None
