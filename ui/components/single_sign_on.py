"""Single sign-on's buttons: `Sign in with <name>` (`/login`), `Accept with <name>` (an invitation) and `Confirm with
<name>` (the password confirmation, for people without a password). Nothing shows while it is not configured."""

from nicegui import ui

from services.config import current_settings
from ui.oidc_routes import sign_in_url


def configured() -> bool:
    return current_settings().single_sign_on_configured


def provider_name() -> str:
    return current_settings().oidc_name


def _go_button(label: str, url: str, *, mark: str) -> ui.button:
    return (
        ui.button(label, icon='login', on_click=lambda: ui.navigate.to(url))
        .props('outline no-caps')
        .classes('w-full')
        .mark(mark)
    )


def sign_in_button(target: str) -> None:
    """`/login`'s `Sign in with <name>`: the round trip to the identity provider, then `target`."""
    if configured():
        _go_button(f'Sign in with {provider_name()}', sign_in_url(target=target), mark='sign-in-with-provider')


def accept_button(token: str) -> None:
    """The invitation page's `Accept with <name>`: the provider vouches for the invited email; no password here."""
    if configured():
        _go_button(f'Accept with {provider_name()}', sign_in_url(invitation=token), mark='accept-with-provider')


def confirm_button(target: str) -> None:
    """`Confirm with <name>`: a fresh sign-in at the provider counts as entering the password again; back to
    `target` afterwards (the person repeats the action)."""
    url = sign_in_url(target=target, confirm=True)
    _go_button(f'Confirm with {provider_name()}', url, mark='confirm-with-provider')
