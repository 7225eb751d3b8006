"""`/forgot-password` and `/reset-password/<token>`: reset a password through an emailed one-hour link."""

from nicegui import background_tasks, ui

from models import LinkState
from services.acting import SCOPES
from services.config import current_settings
from services.identity import password_reset
from ui import actions, session, sign_in_binding, theme
from ui.components.forms import clear_field_errors, new_password_input, show_field_error

NO_MAIL_SERVER = (
    'This server has no mail server configured, so it cannot email you a reset link. Ask an admin of your '
    'organization: they can copy a one-time reset link for you from the team list under User Management.'
)


@ui.page('/forgot-password')
def forgot_password_page() -> None:
    if not current_settings().mail_configured:
        with theme.narrow_card('Reset your password'):
            ui.label(NO_MAIL_SERVER).classes('text-body1').mark('reset-no-mail')
            _links_back()
        return
    with theme.narrow_card('Reset your password', 'Enter the email you sign in with; we email you a link.'):
        email = ui.input('Email').props('type=email autocomplete=username autofocus maxlength=254').classes('w-full')
        # The answer is announced (role=alert) when it appears.
        answer = ui.label().classes('text-body2').props('role=alert').mark('reset-answer')
        answer.set_visibility(False)
        ip = session.client_ip()

        async def send_link() -> None:
            address = (email.value or '').strip()
            answer.set_visibility(False)
            if not address:
                show_field_error({'email': email}, 'email', 'Enter your email')
                return
            clear_field_errors({'email': email})
            # The answer is the same, and just as quick, whether or not the address has an account: the lookup
            # and the email happen in the background.
            background_tasks.create(
                actions.off_loop(lambda: password_reset.send_reset_link(scopes=SCOPES, email=address, ip=ip)),
                name='reset email',
            )
            answer.set_text(
                f'If an account exists for {address}, we have emailed it a link to choose a new '
                'password. The link works once, for 1 hour.'
            )
            answer.set_visibility(True)

        email.on('keydown.enter', send_link)
        ui.button('Send reset link', on_click=send_link).props('no-caps').classes('w-full')
        _links_back()


def _links_back() -> None:
    with ui.row().classes('gap-4'):
        ui.link('Back to sign in', '/login').classes('text-sm')
        ui.link('Troubleshooting', '/help/troubleshooting').classes('text-sm')


@ui.page('/reset-password/{token}')
async def reset_password_page(token: str) -> None:
    state = await actions.read(lambda db: password_reset.token_state(session=db, token=token))
    if state != LinkState.VALID:
        with theme.narrow_card('Reset your password'):
            ui.label(password_reset.STATE_MESSAGES[state]).classes('text-body1').mark('reset-state')
            ui.link('Request a new link', '/forgot-password').classes('text-sm')
        return
    with theme.narrow_card('Choose a new password', 'Every other session of your account will be signed out.'):
        password = new_password_input('New password').props('autofocus')
        ip, agent = session.client_ip(), session.user_agent()

        async def reset() -> None:
            chosen = password.value or ''
            done = await actions.submit(
                lambda: password_reset.reset_with_link(
                    scopes=SCOPES, token=token, password=chosen, ip=ip, user_agent=agent
                ),
                button=button,
                fields={'password': password},
            )
            if done is None:
                return
            sign_in_binding.go(session.next_url(done.next_step))

        password.on('keydown.enter', reset)
        button = ui.button('Reset password', on_click=reset).props('no-caps').classes('w-full')
