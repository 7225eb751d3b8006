"""Form pieces every page shares: the new-password field and errors shown at their field."""

from collections.abc import Mapping

from nicegui import ui
from nicegui.elements.mixins.validation_element import ValidationElement

from services import auth


def new_password_input(label: str = 'Password') -> ui.input:
    """A password field for choosing a password; it says the rule up front."""
    field = ui.input(label, password=True, password_toggle_button=True).classes('w-full')
    return field.props(f'autocomplete=new-password hint="At least {auth.PASSWORD_MIN_LENGTH} characters" maxlength=72')


def show_field_error(fields: Mapping[str, ui.element], field: str | None, message: str) -> None:
    """Put `message` under the named input, or in a notification when no input matches."""
    element = fields.get(field) if field is not None else None
    if isinstance(element, ValidationElement):
        element.error = message
        # Quasar shows the message (role=alert) but does not mark the input itself as invalid for screen readers.
        element.props('aria-invalid=true')
    else:
        ui.notify(message, type='negative')


def clear_field_errors(fields: Mapping[str, ui.element]) -> None:
    for element in fields.values():
        if isinstance(element, ValidationElement):
            element.error = None
        element.props(remove='aria-invalid')
