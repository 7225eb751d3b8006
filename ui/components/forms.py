"""Form pieces every page shares: password fields (with a real Show/Hide button) and errors shown at their field."""

from collections.abc import Mapping

from nicegui import ui
from nicegui.elements.mixins.text_element import TextElement
from nicegui.elements.mixins.validation_element import ValidationElement

from services.identity import auth

SHOW_PASSWORD, HIDE_PASSWORD = 'Show password', 'Hide password'


class PasswordInput(ui.input):
    """A password field whose Show/Hide control is a real button: reached by Tab, named `Show password` or
    `Hide password` by what it does next (its tooltip says so too), `aria-pressed` while the password shows.
    (Quasar's own toggle is a bare icon that neither the keyboard nor a screen reader can use.)"""

    def __init__(self, label: str = 'Password', *, autocomplete: str = 'current-password') -> None:
        super().__init__(label, password=True)
        self.props(f'autocomplete={autocomplete} maxlength=72').classes('w-full')
        with self.add_slot('append'):
            with ui.button(on_click=self.toggle_visibility) as self.toggle_button:
                self._toggle_icon = ui.icon('visibility')
                # The name is the button's (visually hidden) text rather than an aria-label: a label would make the
                # button one more match for "the field labelled Password".
                self._toggle_name = TextElement(tag='span', text=SHOW_PASSWORD).classes('sr-only')
        self.toggle_button.props('flat round dense no-caps color=grey-8').mark('password-toggle')
        self._show_state(visible=False)

    @property
    def showing(self) -> bool:
        return self.props.get('type') == 'text'

    def toggle_visibility(self) -> None:
        self._show_state(visible=not self.showing)

    def _show_state(self, *, visible: bool) -> None:
        self.props(f'type={"text" if visible else "password"}')
        name = HIDE_PASSWORD if visible else SHOW_PASSWORD
        self._toggle_name.set_text(name)
        self._toggle_icon.name = 'visibility_off' if visible else 'visibility'
        self.toggle_button.props(f'title="{name}" aria-pressed={"true" if visible else "false"}')


def password_input(label: str = 'Password', *, autocomplete: str = 'current-password') -> PasswordInput:
    """A password field for entering one's password (sign-in, confirmation)."""
    return PasswordInput(label, autocomplete=autocomplete)


def new_password_input(label: str = 'Password') -> PasswordInput:
    """A password field for choosing a password; it says the rule up front."""
    field = PasswordInput(label, autocomplete='new-password')
    return field.props(f'hint="At least {auth.PASSWORD_MIN_LENGTH} characters"')


def form_message() -> ui.label:
    """Where a form says what went wrong (e.g. `Invalid email or password`): hidden until there is something to
    say, then announced by screen readers (role=alert). Pass it to `actions.submit(message=...)`."""
    message = ui.label().classes('text-negative text-sm').props('role=alert')
    message.set_visibility(False)
    return message


def show_field_error(fields: Mapping[str, ui.element], field: str | None, message: str) -> None:
    """Put `message` under the named input, or in a notification when no input matches."""
    element = fields.get(field) if field is not None else None
    if isinstance(element, ValidationElement):
        element.error = message
        # Quasar shows the message (role=alert) but does not mark the input itself as invalid for screen readers.
        element.props('aria-invalid=true')
    else:
        notify_error(message)


def focus_first_invalid(fields: Mapping[str, ui.element]) -> None:
    """Put the keyboard focus on the first field (in form order) that shows an error."""
    for element in fields.values():
        if isinstance(element, ValidationElement) and element.error:
            element.run_method('focus')
            return


def clear_field_errors(fields: Mapping[str, ui.element]) -> None:
    for element in fields.values():
        if isinstance(element, ValidationElement):
            element.error = None
        element.props(remove='aria-invalid')


def notify_error(message: str) -> None:
    """An error notification: announced (Quasar gives it role=alert) and kept until dismissed, so nobody misses it."""
    ui.notify(message, type='negative', multi_line=True, close_button='OK', timeout=0)
