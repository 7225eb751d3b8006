"""A browser's round trip through single sign-on, for the simulated app (NiceGUI's `user` fixture): the app's own
HTTP routes through the visitor's client (its cookies), the provider's login page through `OidcProvider.sign_in`."""

import asyncio

import pytest
from nicegui.testing import User

from services import crypto
from tests.oidc_provider import OidcProvider, callback_path, query_of
from ui import sign_in_binding
from ui.oidc_routes import sign_in_url


def configure_app(provider: OidcProvider, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """The app's settings for the provider; before the `user` fixture starts the app."""
    for name, value in provider.environment(**extra).items():
        monkeypatch.setenv(name, value)


async def start(visitor: User, *, target: str = '/', invitation: str | None = None, confirm: bool = False) -> str:
    """`Sign in with …` (`Accept with …`, `Confirm with …`) in this browser: the provider's authorization URL.

    The button is on a page of the app, which gave the browser its sign-in nonce (`ui/sign_in_binding.py`): the
    handoff code the callback issues is bound to it."""
    if sign_in_binding.COOKIE not in visitor.http_client.cookies:
        await visitor.open('/login')
    response = await visitor.http_client.get(sign_in_url(target=target, invitation=invitation, confirm=confirm))
    assert response.status_code == 302, (response.status_code, response.headers.get('location'), response.text)
    return response.headers['location']


async def at_provider(provider: OidcProvider, authorization_url: str, login: str) -> str:
    return await asyncio.to_thread(provider.sign_in, authorization_url, login)


async def come_back(visitor: User, callback_url: str) -> str:
    """The browser brought back to the app by the provider; where the app sends it next."""
    response = await visitor.http_client.get(callback_path(callback_url))
    assert response.status_code == 303, response.text
    return response.headers['location']


async def round_trip(visitor: User, provider: OidcProvider, login: str, **how: object) -> str:
    return await come_back(visitor, await at_provider(provider, await start(visitor, **how), login))  # type: ignore[arg-type]


async def signed_in_through(visitor: User, provider: OidcProvider, login: str, **how: object) -> None:
    """A round trip that signs in: the session's cookie is set (`/session/start`)."""
    location = await round_trip(visitor, provider, login, **how)
    assert location.startswith('/session/start?code='), refusal_on_login(location)
    await visitor.http_client.get(location)


def refusal_on_login(location: str) -> str:
    """The sentence `/login` shows for a refusal (the app signs it, so it is readable from the redirect)."""
    assert location.startswith('/login?notice='), location
    said = crypto.unsigned(query_of(location)['notice'], 'sso-notice')
    assert said is not None
    return said
