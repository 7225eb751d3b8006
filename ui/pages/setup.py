"""`/setup`: first run, creates the organization and its first admin."""

from fastapi.responses import RedirectResponse
from nicegui import run, ui

from services import auth
from services.db import write_scope
from services.errors import ServiceError, ValidationFailed
from ui import session, theme
from ui.components.busy import busy


@ui.page('/setup')
def setup_page() -> RedirectResponse | None:
    with write_scope() as db:
        if not auth.setup_needed(session=db):
            return RedirectResponse('/login')
    with theme.narrow_card('Set up CX Toolbox', 'Create your organization and its first admin account.'):
        fields = {
            'organization': ui.input('Organization name').props('autofocus').classes('w-full'),
            'name': ui.input('Your name').props('autocomplete=name').classes('w-full'),
            'email': ui.input('Email').props('type=email autocomplete=email').classes('w-full'),
            'password': theme.new_password_input(),
        }

        async def create() -> None:
            theme.clear_field_errors(fields)
            try:
                with busy(button):
                    user = await run.io_bound(
                        _create,
                        fields['organization'].value,
                        fields['name'].value,
                        fields['email'].value,
                        fields['password'].value,
                        session.client_ip(),
                    )
            except ValidationFailed as error:
                theme.show_field_error(fields, error.field, str(error))
                return
            except ServiceError as error:
                ui.notify(str(error), type='negative')
                return
            session.sign_in(user)
            ui.navigate.to('/')

        fields['password'].on('keydown.enter', create)
        button = ui.button('Create organization', on_click=create).props('no-caps').classes('w-full')
    return None


def _create(organization: str, name: str, email: str, password: str, ip: str | None) -> object:
    with write_scope() as db:
        return auth.create_first_admin(
            session=db,
            organization_name=organization or '',
            name=name or '',
            email=email or '',
            password=password or '',
            ip=ip,
        )
