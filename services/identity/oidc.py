"""The identity provider (OpenID Connect), through Authlib's Starlette client: the one module that imports Authlib.

Everything about the protocol is Authlib's: discovery from `CXT_OIDC_ISSUER`, the authorization code flow with PKCE
(S256), `state` and `nonce`, the code exchange, and the ID token's checks (signature against the provider's published
keys, `iss`, `aud`, `exp`, `iat`, `nonce`). This module configures it and turns its outcomes into plain words.

`state` is bound to the browser that started the round trip and works once: Authlib keeps a marker in the browser's
signed session cookie and the round trip's data (PKCE verifier, nonce) in `StateStore`, a table every process shares;
reading a state deletes it, so a second callback with it finds nothing.
"""

import asyncio
import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import col, delete, select
from starlette.requests import Request
from starlette.responses import RedirectResponse

from models import SingleSignOnState
from models.base import utcnow
from services import crypto
from services.config import Settings, current_settings
from services.db import write_scope

if TYPE_CHECKING:  # Authlib (with joserfc and `cryptography`) loads on the first round trip, not at start-up
    from authlib.integrations.starlette_client.apps import StarletteOAuth2App

log = logging.getLogger(__name__)

ROUND_TRIP_LIFETIME = timedelta(minutes=10)  # from `Sign in with …` to the callback
PROVIDER_TIMEOUT = 10.0  # seconds, for each call to the provider
_CLIENT_NAME = 'cxt'


class ProviderUnavailable(Exception):
    """The provider cannot be used now (unreachable, a bad discovery document); the message is one plain line."""


class SignInFailed(Exception):
    """The callback is refused; `reason` says why in plain words for the audit log, the message for the person."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in, from the checked ID token."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    auth_time: float | None


class StateStore:
    """Authlib's cache for started round trips, in the database (`single_sign_on_state`). It opens its own
    transactions: Authlib calls it from inside the flow, where no caller's session exists."""

    async def get(self, key: Hashable) -> str | None:
        return await asyncio.to_thread(self._take, str(key))

    async def set(self, key: Hashable, value: str, expires_in: int | None = None) -> None:
        await asyncio.to_thread(self._put, str(key), value)

    async def delete(self, key: Hashable) -> None:
        return None  # `get` has already taken it: a state is read once

    @staticmethod
    def _take(key: str) -> str | None:
        with write_scope() as db:
            # FOR UPDATE: a state is taken once, also by two callbacks at the same moment.
            statement = select(SingleSignOnState).where(SingleSignOnState.key_hash == crypto.sha256_hex(key))
            row = db.exec(statement.with_for_update()).first()
            if row is None:
                return None
            db.delete(row)
            return row.value if row.expires_at > utcnow() else None

    @staticmethod
    def _put(key: str, value: str) -> None:
        now = utcnow()
        with write_scope() as db:
            db.exec(delete(SingleSignOnState).where(col(SingleSignOnState.expires_at) <= now))
            db.add(
                SingleSignOnState(key_hash=crypto.sha256_hex(key), value=value, expires_at=now + ROUND_TRIP_LIFETIME)
            )


_clients: dict[tuple[str, str, str, str], 'StarletteOAuth2App'] = {}


def _client(settings: Settings) -> 'StarletteOAuth2App':
    """The Authlib client for these settings (one per configuration; it keeps the discovered metadata and keys)."""
    from authlib.integrations.starlette_client import OAuth

    assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
    key = (settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret, settings.oidc_scopes)
    if key not in _clients:
        oauth = OAuth(cache=StateStore())
        _clients[key] = oauth.register(
            name=_CLIENT_NAME,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=discovery_url(settings.oidc_issuer),
            client_kwargs={'scope': settings.oidc_scopes, 'code_challenge_method': 'S256', 'timeout': PROVIDER_TIMEOUT},
        )
        _clients[key].framework.expires_in = int(ROUND_TRIP_LIFETIME.total_seconds())
    return _clients[key]


def discovery_url(issuer: str) -> str:
    return issuer.rstrip('/') + '/.well-known/openid-configuration'


async def discover(settings: Settings | None = None) -> dict[str, Any]:
    """The provider's discovery document, fetched once per process and checked; ProviderUnavailable otherwise."""
    import httpx

    settings = settings or current_settings()
    issuer = settings.oidc_issuer or ''
    client = _client(settings)
    try:
        metadata = await client.load_server_metadata()
    except (httpx.HTTPError, ValueError) as error:
        client.server_metadata.clear()  # asked again next time
        raise ProviderUnavailable(
            f'Single sign-on is not available: {discovery_url(issuer)} did not answer ({_short(error)})'
        ) from None
    problem = _metadata_problem(metadata, issuer)
    if problem:
        client.server_metadata.clear()
        raise ProviderUnavailable(f'Single sign-on is not available: {problem}')
    return metadata


def _metadata_problem(metadata: dict[str, Any], issuer: str) -> str | None:
    said = str(metadata.get('issuer') or '')
    if said.rstrip('/') != issuer.rstrip('/'):
        return f'the provider calls itself {said!r}, not {issuer!r} (check CXT_OIDC_ISSUER)'
    for needed in ('authorization_endpoint', 'token_endpoint', 'jwks_uri'):
        if not metadata.get(needed):
            return f'the discovery document at {discovery_url(issuer)} has no {needed}'
    methods = metadata.get('code_challenge_methods_supported')
    if methods is not None and 'S256' not in methods:
        return 'the provider does not offer PKCE with S256'
    return None


def _short(error: BaseException) -> str:
    import httpx

    if isinstance(error, httpx.HTTPStatusError):
        return f'HTTP {error.response.status_code}'
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


async def begin(request: Request, *, fresh_sign_in: bool = False) -> tuple[RedirectResponse, str]:
    """The redirect to the provider's sign-in (with `prompt=login` and `max_age=0` when `fresh_sign_in`: the person
    must enter their credentials there again) and the round trip's state. ProviderUnavailable when it cannot start."""
    import httpx
    from authlib.common.errors import AuthlibBaseError

    settings = current_settings()
    await discover(settings)
    client = _client(settings)
    extra = {'prompt': 'login', 'max_age': 0} if fresh_sign_in else {}
    redirect_uri = settings.oidc_redirect_uri
    try:
        started = await client.create_authorization_url(redirect_uri, **extra)
        await client.save_authorize_data(request, redirect_uri=redirect_uri, **started)
    except (httpx.HTTPError, AuthlibBaseError, RuntimeError) as error:
        raise ProviderUnavailable(f'Single sign-on is not available: {_short(error)}') from None
    return RedirectResponse(started['url'], status_code=302), started['state']


async def finish(request: Request) -> ProviderIdentity:
    """The callback: Authlib takes the state (once, from this browser), trades the code with the PKCE verifier and
    checks the ID token; the identity it proves, or SignInFailed saying why not."""
    settings = current_settings()
    if request.query_params.get('error'):
        said = request.query_params.get('error_description') or request.query_params['error']
        raise SignInFailed(f'{settings.oidc_name} did not sign you in: {said[:200]}', reason='provider refused')
    try:
        await discover(settings)
    except ProviderUnavailable as unavailable:
        raise SignInFailed(str(unavailable), reason='provider unreachable') from None
    token = await _checked_token(request, settings)
    claims = token.get('userinfo')
    if not claims or not claims.get('sub'):
        raise SignInFailed(_START_AGAIN, reason='no ID token')
    return _identity_from(claims)


async def _checked_token(request: Request, settings: Settings) -> dict[str, Any]:
    """The provider's token for the code in `request`, its ID token checked; SignInFailed for every way it fails."""
    import httpx
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    client = _client(settings)
    try:
        return await client.authorize_access_token(request)
    except AuthlibBaseError as error:
        reason = getattr(error, 'error', None) or type(error).__name__
        if reason == 'mismatching_state':
            raise SignInFailed(_START_AGAIN, reason='unknown, used or foreign state') from None
        raise SignInFailed(_START_AGAIN, reason=f'token refused ({_describe(error)})') from None
    except JoseError as error:
        raise SignInFailed(_START_AGAIN, reason=f'ID token refused ({_describe(error)})') from None
    except httpx.HTTPError as error:
        raise SignInFailed(
            f'{settings.oidc_name} could not be reached ({_short(error)}). Try again.', reason='provider unreachable'
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise SignInFailed(_START_AGAIN, reason=f'unreadable answer ({_describe(error)})') from None


def _identity_from(claims: Mapping[str, Any]) -> ProviderIdentity:
    auth_time = claims.get('auth_time')
    return ProviderIdentity(
        issuer=str(claims['iss']),
        subject=str(claims['sub']),
        email=str(claims['email']).strip().lower() if claims.get('email') else None,
        email_verified=claims.get('email_verified') is True,
        name=str(claims['name']).strip() if claims.get('name') else None,
        auth_time=float(auth_time) if isinstance(auth_time, int | float) else None,
    )


_START_AGAIN = 'That sign-in did not work. Start again from the sign-in page.'


def _describe(error: BaseException) -> str:
    text = getattr(error, 'description', None) or str(error) or type(error).__name__
    return f'{type(error).__name__}: {text}'[:200]
