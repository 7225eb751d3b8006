"""`/invite/<token>`: accept an invitation, choosing a name and a password."""

from nicegui import run, ui

from models import User
from services import invitations
from services.db import write_scope
from services.errors import ServiceError, ValidationFailed
from ui import session, theme
from ui.components.busy import busy
from ui.tabs.team import team_changed


@ui.page('/invite/{token}')
def invite_page(token: str) -> None:
    with write_scope() as db:
        view = invitations.lookup_invitation(session=db, token=token)
    if view.state != 'valid':
        with theme.narrow_card('Invitation'):
            ui.label(view.message).classes('text-body1').mark('invitation-state')
            ui.label('Ask the person who invited you for a new invitation.').classes('text-sm text-grey-8')
            ui.link('Go to sign in', '/login').classes('text-sm')
        return
    role = invitations.ROLE_LABELS.get(view.role, view.role).lower()
    with theme.narrow_card(
        f'Join {view.organization_name}', f'{view.inviter} invited you to {view.organization_name} as {role}.'
    ):
        fields = {
            'email': ui.input('Email', value=view.email).props('readonly').classes('w-full'),
            'name': ui.input('Your name').props('autocomplete=name autofocus').classes('w-full'),
            'password': theme.new_password_input(),
        }

        async def accept() -> None:
            theme.clear_field_errors(fields)
            try:
                with busy(button):
                    user = await run.io_bound(
                        _accept, token, fields['name'].value or '', fields['password'].value or '', session.client_ip()
                    )
            except ValidationFailed as error:
                if error.field is None:  # the invitation itself is no longer valid: show the page that says why
                    ui.navigate.reload()
                    return
                theme.show_field_error(fields, error.field, str(error))
                return
            except ServiceError as error:
                ui.notify(str(error), type='negative')
                return
            session.sign_in(user)
            team_changed(user.organization_id)
            ui.navigate.to('/')

        fields['password'].on('keydown.enter', accept)
        button = ui.button('Accept invitation', on_click=accept).props('no-caps').classes('w-full')


def _accept(token: str, name: str, password: str, ip: str | None) -> User:
    with write_scope() as db:
        return invitations.accept_invitation(session=db, token=token, name=name, password=password, ip=ip)
