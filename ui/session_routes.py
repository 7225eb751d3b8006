"""`/session/start`: trade a sign-in's one-time handoff code for the session cookie, then go on to the page asked for.

A sign-in happens over the page socket, which cannot set a cookie; this plain HTTP route can. The token is new at
every sign-in, so a cookie planted in a browser before its owner signs in never becomes a signed-in one. The code
works only in the browser whose page it was handed to (`ui/sign_in_binding.py`).
"""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from services.acting import SCOPES
from services.config import current_settings
from services.identity import sessions, sign_in
from ui import sign_in_binding
from ui.session import COOKIE, START_PATH, safe_redirect_target

router = APIRouter()


@router.get(START_PATH, include_in_schema=False)
async def start_session(request: Request, code: str = '', next: str = '/', bind: str = '') -> RedirectResponse:
    if not sign_in_binding.is_bound(request, code=code, bind=bind):
        return RedirectResponse('/login', status_code=303)  # a code handed to another browser: login CSRF
    previous = sessions.token_from_cookie(request.cookies.get(COOKIE))

    token = await run_in_threadpool(lambda: sign_in.start_session(scopes=SCOPES, code=code, previous_token=previous))
    if token is None:
        return RedirectResponse('/login', status_code=303)
    response = RedirectResponse(safe_redirect_target(next), status_code=303)
    response.set_cookie(
        COOKIE,
        sessions.cookie_value(token),
        max_age=int(sessions.LIFETIME.total_seconds()),
        httponly=True,
        samesite='lax',
        secure=current_settings().resolved_public_url.startswith('https://'),
        path='/',
    )
    return response
