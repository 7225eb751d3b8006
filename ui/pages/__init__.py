"""One module per route; importing a module registers its page."""

from ui.pages import (
    dashboard,
    help,
    invite,
    login,
    not_found,
    organization,
    password_reset,
    security,
    setup,
    two_factor,
)

__all__ = [
    'dashboard',
    'help',
    'invite',
    'login',
    'not_found',
    'organization',
    'password_reset',
    'security',
    'setup',
    'two_factor',
]
