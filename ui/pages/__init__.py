"""One module per route; importing a module registers its page."""

from ui.pages import dashboard, help, login, setup

__all__ = ['dashboard', 'help', 'login', 'setup']
