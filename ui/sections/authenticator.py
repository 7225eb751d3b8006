"""Setting up an authenticator app, shared by the Security page and the set-up a required second factor forces at
sign-in: the QR code (and the key as text), one code to confirm, then the recovery codes, shown once."""

from collections.abc import Awaitable, Callable, Mapping

from nicegui import ui
from nicegui.elements.mixins.text_element import TextElement

from services.identity.two_factor import Enrolment
from ui import theme

CODES_FILE = 'cx-toolbox-recovery-codes.txt'


def code_input(label: str = 'Authentication code', *, recovery: bool = False) -> ui.input:
    """The code field: a numeric keyboard and the phone's one-time-code autofill (a recovery code has letters)."""
    field = ui.input(label).classes('w-full').mark('code')
    if recovery:
        field.props('autocomplete=off autocapitalize=off spellcheck=false maxlength=40 autofocus')
    else:
        field.props('inputmode=numeric autocomplete=one-time-code maxlength=40 autofocus')
    return field


def qr_code(uri: str) -> None:
    """The `otpauth://` URI as an inline SVG QR code, named for screen readers."""
    import segno  # loads when someone sets up an app, not in every process at start-up

    svg = segno.make(uri, error='m').svg_inline(scale=5, border=2, dark='#000000', light='#ffffff')
    ui.html(
        f'<div role="img" aria-label="QR code to scan with your authenticator app">{svg}</div>', sanitize=False
    ).mark('qr-code')


def grouped(secret: str) -> str:
    return ' '.join(secret[index : index + 4] for index in range(0, len(secret), 4))


class AuthenticatorSetUp:
    """The set-up in `container`: `begin` loads the secret; `confirm(code, button, fields)` switches the app on and
    returns the recovery codes (None once the person has been told why not); `done` runs after the codes were seen.
    Each callable runs its work through `ui/actions.py`."""

    def __init__(
        self,
        container: ui.element,
        *,
        begin: Callable[[], Awaitable[Enrolment | None]],
        confirm: Callable[[str, ui.button, Mapping[str, ui.element]], Awaitable[list[str] | None]],
        done: Callable[[], Awaitable[None]],
        done_label: str = 'Done',
        cancel: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.container = container
        self.begin, self.confirm, self.done, self.done_label = begin, confirm, done, done_label
        self.cancel = cancel  # `Cancel` beside `Confirm` (not where the set-up is required to sign in)

    async def show(self) -> bool:
        """Show the QR code step; False when the secret could not be loaded (the person was told why)."""
        enrolment = await self.begin()
        if enrolment is None:
            return False
        self.container.clear()
        with self.container:
            theme.heading('Scan the QR code', level=3)
            ui.label(
                'Scan it with an authenticator app (Google Authenticator, Microsoft Authenticator, 1Password, ...), '
                'then enter the 6-digit code the app shows.'
            ).classes('text-sm')
            qr_code(enrolment.uri)
            ui.label('Cannot scan it? Enter this key in the app instead:').classes('text-sm text-grey-8')
            ui.label(grouped(enrolment.secret)).classes('font-mono text-body1 break-all').mark('totp-secret')
            code = code_input()
            fields = {'code': code}

            async def confirm() -> None:
                codes = await self.confirm(code.value or '', button, fields)
                if codes is not None:
                    self.show_recovery_codes(codes)

            code.on('keydown.enter', confirm)
            with ui.row().classes('gap-2'):
                button = ui.button('Confirm', on_click=confirm).props('no-caps').mark('confirm-code')
                if self.cancel is not None:
                    ui.button('Cancel', on_click=self.cancel).props('flat no-caps').mark('cancel-set-up')
        return True

    def show_recovery_codes(self, codes: list[str]) -> None:
        text = '\n'.join(['CX Toolbox Dashboard recovery codes (each works once)', '', *codes, ''])
        self.container.clear()
        with self.container:
            theme.heading('Save your recovery codes', level=3)
            ui.label(
                'Two-factor authentication is on. If you lose your phone, each of these codes signs you in once. '
                'They are shown only now: download them or write them down, and keep them somewhere safe.'
            ).classes('text-sm').props('role=status')
            with ui.element('ul').classes('font-mono text-body1 q-pl-md q-my-none').mark('recovery-codes'):
                for code in codes:
                    TextElement(tag='li', text=code).classes('q-py-xs')
            with ui.row().classes('gap-2'):
                ui.button(
                    'Download',
                    icon='download',
                    on_click=lambda: ui.download.content(text.encode(), CODES_FILE, 'text/plain'),
                ).props('outline no-caps')
                ui.button(self.done_label, on_click=self.done).props('no-caps').mark('codes-saved')
