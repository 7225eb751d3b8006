"""One module per route; importing a module registers its page."""

from ui.pages import dashboard, help, invite, login, password_reset, security, setup, two_factor

__all__ = ['dashboard', 'help', 'invite', 'login', 'password_reset', 'security', 'setup', 'two_factor']
