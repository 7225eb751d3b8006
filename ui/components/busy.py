"""Progress on a button while slow work runs."""

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui


@contextmanager
def busy(button: ui.button) -> Iterator[None]:
    """Spinner on, button disabled (and announced so) while slow work runs: bcrypt, SMTP, Stripe."""
    button.props('loading')
    button.disable()
    try:
        yield
    finally:
        button.props(remove='loading')
        button.enable()
