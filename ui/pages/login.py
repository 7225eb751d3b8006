"""`/login`: email and password, with the per-email lockout."""

from fastapi.responses import RedirectResponse
from nicegui import run, ui

from models import User
from services import auth
from services.db import write_scope
from services.errors import ServiceError
from ui import session, theme
from ui.components.busy import busy


@ui.page('/login')
def login_page(redirect_to: str = '/') -> RedirectResponse | None:
    target = session.safe_redirect_target(redirect_to)
    with write_scope() as db:
        if auth.setup_needed(session=db):
            return RedirectResponse('/setup')
    if session.current_user() is not None:
        return RedirectResponse(target)
    with theme.narrow_card('Welcome back', 'Sign in to manage your CX Toolbox organization.'):
        email = ui.input('Email').props('type=email autocomplete=username autofocus').classes('w-full')
        password = ui.input('Password', password=True, password_toggle_button=True)
        password.props('autocomplete=current-password').classes('w-full')
        message = ui.label().classes('text-negative text-sm').mark('login-error')
        message.set_visibility(False)

        async def sign_in() -> None:
            message.set_visibility(False)
            try:
                with busy(button):
                    user = await run.io_bound(
                        _authenticate, email.value or '', password.value or '', session.client_ip()
                    )
            except ServiceError as error:
                message.set_text(str(error))
                message.set_visibility(True)
                password.value = ''
                return
            session.sign_in(user)
            ui.navigate.to(target)

        password.on('keydown.enter', sign_in)
        button = ui.button('Sign in', on_click=sign_in).props('no-caps').classes('w-full')
        ui.link('Forgot password?', '/forgot-password').classes('text-sm')
    return None


def _authenticate(email: str, password: str, ip: str | None) -> User:
    with write_scope() as db:
        return auth.authenticate(session=db, email=email, password=password, ip=ip)
