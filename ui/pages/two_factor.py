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
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from models import User
from services.config import current_settings
from services.db import write_scope
from services.errors import ValidationFailed
from services.identity import code_lock, passkeys, sessions, two_factor
from ui import actions, session, sign_in_binding, theme
from ui.components.authenticator import WRONG_SET_UP_CODE, AuthenticatorSetUp, code_input
from ui.components.forms import form_message
from ui.components.passkeys import PasskeySecondStepButton

PENDING_COOKIE = 'cxt_pending_sign_in'
START_PATH = '/login/code/start'
CODE_PATH = '/login/code'
SET_UP_PATH = '/login/set-up-two-factor'

router = APIRouter()


def pending_start_url(handoff_code: str, target: str = '/') -> str:
    """Where the password step sends a browser whose sign-in needs a second step."""
    return f'{START_PATH}?{urlencode({"code": handoff_code, "next": session.safe_redirect_target(target)})}'


def after_password(db: Session, user: User, ip: str | None, user_agent: str | None, target: str = '/') -> str:
    """Where a browser goes once the password is right (sign-in, a password reset, an accepted invitation): the second
    step when the password is not enough (`two_factor.password_is_enough`), else a new session's start. Inside the
    caller's transaction."""
    if not two_factor.password_is_enough(session=db, user=user):
        return pending_start_url(two_factor.begin_pending(session=db, user=user, ip=ip, user_agent=user_agent), target)
    return session.start_url(sessions.start(session=db, user=user, ip=ip, user_agent=user_agent), target)


def _with_target(path: str, target: str, **extra: str) -> str:
    return f'{path}?{urlencode({**extra, "redirect_to": session.safe_redirect_target(target)})}'


@router.get(START_PATH, include_in_schema=False)
async def start_pending(request: Request, code: str = '', next: str = '/', bind: str = '') -> RedirectResponse:
    if not sign_in_binding.is_bound(request, code=code, bind=bind):
        return RedirectResponse('/login', status_code=303)  # a code handed to another browser: login CSRF

    def trade() -> str | None:
        with write_scope() as db:
            return two_factor.complete_pending_handoff(session=db, code=code)

    token = await run_in_threadpool(trade)
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
    ip, agent = session.client_ip(), session.user_agent()
    codes = step.has_app and not step.codes_locked
    recovery = recovery and codes
    if step.has_app and step.codes_locked:
        title = 'Two-factor authentication'
        intro = 'Codes no longer sign this account in.'
        if step.has_passkey:
            intro = 'Use your passkey to finish signing in.'
    elif recovery:
        title, intro = 'Use a recovery code', 'Enter one of the recovery codes you saved when you set up the app.'
    elif step.has_app and step.has_passkey:
        title, intro = (
            'Two-factor authentication',
            'Enter the 6-digit code from your authenticator app, or use a passkey.',
        )
    elif step.has_app:
        title, intro = 'Two-factor authentication', 'Enter the 6-digit code from your authenticator app.'
    else:
        title, intro = 'Two-factor authentication', 'Use your passkey to finish signing in.'
    with theme.narrow_card(title, intro):
        ui.label(f'Signing in as {step.email}').classes('text-sm text-grey-8')
        if step.has_app and step.codes_locked:
            ui.label(code_lock.LOCKED).props('role=alert').classes('text-negative text-sm').mark('codes-locked')
        elif codes:
            code = code_input('Recovery code' if recovery else 'Authentication code', recovery=recovery)
            message = form_message().mark('code-error')

            async def verify() -> None:
                entered = code.value or ''
                handoff = await actions.submit(
                    lambda: _verify(token, entered, ip, agent), button=button, fields={'code': code}, message=message
                )
                if handoff is None:
                    return
                sign_in_binding.go(session.start_url(handoff, target))

            code.on('keydown.enter', verify)
            button = ui.button('Verify', on_click=verify).props('no-caps').classes('w-full')
        if step.has_passkey:
            if (reason := passkeys.unavailable_reason()) is None:
                PasskeySecondStepButton(token=token, target=target)
            else:
                ui.label(reason).classes('text-sm text-grey-8').mark('passkeys-unavailable')
        if codes:
            if recovery:
                ui.link('Use your authenticator app', _with_target(CODE_PATH, target)).classes('text-sm')
            else:
                ui.link('Use a recovery code', _with_target(CODE_PATH, target, recovery='true')).classes('text-sm')
        ui.link('Back to sign in', '/login').classes('text-sm')
    return None


def _verify(token: str | None, code: str, ip: str | None, user_agent: str | None) -> str:
    """Check the code (counted and audited) and start the session; returns its handoff code."""
    with write_scope() as db:
        outcome = two_factor.check_sign_in_code(session=db, token=token, code=code, ip=ip)
        user = outcome.user
        handoff = (
            sessions.start(session=db, user=user, ip=ip, user_agent=user_agent, second_factor=True)
            if user is not None
            else None
        )
    if handoff is None:
        raise ValidationFailed(outcome.message, field='code')  # after the commit: the failure stays counted
    return handoff


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
            return await actions.submit(lambda: _begin(token))

        async def confirm(code: str, button: ui.button, fields: Mapping[str, ui.element]) -> list[str] | None:
            return await actions.submit(lambda: _confirm(token, code, ip), button=button, fields=fields)

        async def done() -> None:
            handoff = await actions.submit(lambda: _finish(token, ip, agent))
            if handoff is not None:
                sign_in_binding.go(session.start_url(handoff, target))

        set_up = AuthenticatorSetUp(container, begin=begin, confirm=confirm, done=done, done_label='Continue')
        ui.link('Back to sign in', '/login').classes('text-sm')
    ui.timer(0, set_up.show, once=True)
    return None


def _begin(token: str | None) -> two_factor.Enrolment:
    with write_scope() as db:
        return two_factor.begin_pending_enrolment(session=db, token=token)


def _confirm(token: str | None, code: str, ip: str | None) -> list[str]:
    with write_scope() as db:
        user = two_factor.pending_set_up_user(session=db, token=token)
        codes = two_factor.confirm_enrolment(session=db, user=user, code=code, ip=ip)
    if codes is None:
        raise ValidationFailed(WRONG_SET_UP_CODE, field='code')
    return codes


def _finish(token: str | None, ip: str | None, user_agent: str | None) -> str:
    with write_scope() as db:
        user = two_factor.finish_set_up_sign_in(session=db, token=token, ip=ip)
        return sessions.start(session=db, user=user, ip=ip, user_agent=user_agent, second_factor=True)
