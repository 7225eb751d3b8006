"""`/login/oidc/start` and `/login/oidc/callback`: the round trip to the identity provider (single sign-on).

Plain HTTP routes, like `/session/start`: the start redirects the browser to the provider (Authlib keeps the round
trip's state bound to this browser, `services/identity/oidc.py`); the callback checks what the provider sent, applies
the rules
of who gets in (`services/identity/single_sign_on.py`) and hands the new session to `/session/start`, which sets the
cookie.
Every refusal ends on `/login` with one plain sentence; nothing is created.
"""

import logging
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from services import crypto
from services.acting import SCOPES
from services.config import current_settings
from services.identity import oidc, sessions, single_sign_on
from services.identity.single_sign_on import Refusal
from ui import sign_in_binding
from ui.session import COOKIE, safe_redirect_target, start_url

START_PATH = '/login/oidc/start'
CALLBACK_PATH = '/login/oidc/callback'
_CONTEXT = 'cxt_sso'  # in the browser's signed session: what the round trip is for
_NOTICE = 'sso-notice'
MAX_INVITATION_TOKEN = 100

log = logging.getLogger(__name__)
router = APIRouter()


def sign_in_url(*, target: str = '/', invitation: str | None = None, confirm: bool = False) -> str:
    """Where `Sign in with …`, `Accept with …` and `Confirm with …` go."""
    query: dict[str, str] = {'next': safe_redirect_target(target)}
    if invitation:
        query['invitation'] = invitation
    if confirm:
        query['confirm'] = '1'
    return f'{START_PATH}?{urlencode(query)}'


def notice_url(message: str, target: str = '/') -> str:
    """`/login` saying `message` (signed, so nobody can make the page say something else)."""
    query = {'notice': crypto.signed(message, _NOTICE), 'redirect_to': safe_redirect_target(target)}
    return f'/login?{urlencode(query)}'


def notice_from(value: str | None) -> str | None:
    return crypto.unsigned(value, _NOTICE) if value else None


@router.get(START_PATH, include_in_schema=False)
async def start(request: Request, next: str = '/', invitation: str = '', confirm: str = '') -> RedirectResponse:
    target = safe_redirect_target(next)
    if not current_settings().single_sign_on_configured:
        return RedirectResponse('/login', status_code=303)
    if confirm and await run_in_threadpool(_signed_in, request) is None:
        return RedirectResponse('/login', status_code=303)
    try:
        response, state = await oidc.begin(request, fresh_sign_in=bool(confirm))
    except oidc.ProviderUnavailable as unavailable:
        log.warning('%s', unavailable)
        return RedirectResponse(notice_url(str(unavailable), target), status_code=303)
    request.session[_CONTEXT] = {
        'state': state,
        'next': target,
        'invitation': invitation[:MAX_INVITATION_TOKEN],
        'confirm': bool(confirm),
        'started': time.time(),
    }
    return response


@router.get(CALLBACK_PATH, include_in_schema=False)
async def callback(request: Request) -> RedirectResponse:
    context: dict[str, Any] = request.session.pop(_CONTEXT, None) or {}
    target = safe_redirect_target(context.get('next'))
    ip = request.client.host if request.client else None
    try:
        identity = await oidc.finish(request)
    except oidc.SignInFailed as failed:
        log.warning('single sign-on refused: %s', failed.reason)
        await _record(Refusal(str(failed), failed.reason), ip)
        return RedirectResponse(notice_url(str(failed), target), status_code=303)
    if context.get('state') != request.query_params.get('state'):  # Authlib took this browser's state: it must be ours
        refusal = Refusal('That sign-in did not work. Start again from the sign-in page.', 'round trip mismatch')
        await _record(refusal, ip)
        return RedirectResponse(notice_url(refusal.message), status_code=303)
    if context.get('confirm'):
        return await _confirmed(request, identity, context, target, ip)
    agent = request.headers.get('user-agent')
    invitation = context.get('invitation') or None
    outcome = await run_in_threadpool(
        lambda: single_sign_on.sign_in_with_provider(
            scopes=SCOPES, identity=identity, ip=ip, user_agent=agent, invitation_token=invitation
        )
    )
    if isinstance(outcome, Refusal):
        return RedirectResponse(notice_url(outcome.message), status_code=303)
    started = start_url(outcome.handoff, target)
    return RedirectResponse(sign_in_binding.bind_for_route(started, request), status_code=303)


async def _confirmed(
    request: Request, identity: oidc.ProviderIdentity, context: dict[str, Any], target: str, ip: str | None
) -> RedirectResponse:
    """`Confirm with …` came back: back to where it was asked for, or `/login` saying why not."""
    token = sessions.token_from_cookie(request.cookies.get(COOKIE))
    started_at = float(context.get('started') or 0)
    refusal = await run_in_threadpool(
        lambda: single_sign_on.confirm_with_provider(
            scopes=SCOPES, identity=identity, token=token, started_at=started_at, ip=ip
        )
    )
    if refusal is not None:
        return RedirectResponse(notice_url(refusal.message, target), status_code=303)
    return RedirectResponse(target, status_code=303)


async def _record(refusal: Refusal, ip: str | None) -> None:
    await run_in_threadpool(lambda: single_sign_on.record_refused(scopes=SCOPES, refusal=refusal, ip=ip))


def _signed_in(request: Request) -> sessions.SignedIn | None:
    token = sessions.token_from_cookie(request.cookies.get(COOKIE))
    return SCOPES.reading(lambda db: sessions.signed_in(session=db, token=token))


async def check_provider() -> None:
    """At start-up: one line saying whether the identity provider answered (the app serves either way)."""
    settings = current_settings()
    if not settings.single_sign_on_configured:
        return
    try:
        await oidc.discover(settings)
    except oidc.ProviderUnavailable as unavailable:
        log.warning('%s. Passwords keep working; /login says so when someone tries it.', unavailable)
        return
    log.info('Single sign-on with %s (%s) is on', settings.oidc_name, settings.oidc_issuer)
