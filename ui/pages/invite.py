"""`/invite/<token>`: accept an invitation, choosing a name and a password."""

from nicegui import ui

from models import LinkState
from services.acting import SCOPES
from services.identity import invitations
from ui import actions, session, sign_in_binding, theme
from ui.components.forms import new_password_input
from ui.components.single_sign_on import accept_button

NEWER_INVITATION = (
    'A newer invitation may have been sent to you: each new invitation email replaces the link of the one before. '
    'Use the link in the latest email.'
)
ALREADY_JOINED = 'If you accepted it, you already have an account: sign in with your email and password.'


@ui.page('/invite/{token}')
async def invite_page(token: str) -> None:
    view = await actions.read(lambda db: invitations.lookup_invitation(session=db, token=token))
    if view.state != LinkState.VALID:
        with theme.narrow_card('Invitation'):
            ui.label(view.message).classes('text-body1').mark('invitation-state')
            if view.state == LinkState.USED:
                # Whoever used it has an account now: most likely the person reading this, back for a second visit.
                ui.label(ALREADY_JOINED).classes('text-sm text-grey-8').mark('already-joined')
                ui.button('Sign in').props('no-caps href=/login').classes('w-full').mark('sign-in-link')
                return
            if view.state == LinkState.UNKNOWN:
                # Resending or inviting again makes a new link and the old one stops working.
                ui.label(NEWER_INVITATION).classes('text-sm text-grey-8').mark('newer-invitation')
            ui.label('Ask the person who invited you for a new invitation.').classes('text-sm text-grey-8')
            ui.link('Go to sign in', '/login').classes('text-sm')
        return
    role = view.role.label.lower()
    with theme.narrow_card(
        f'Join {view.organization_name}', f'{view.inviter} invited you to {view.organization_name} as {role}.'
    ):
        fields = {
            'email': ui.input('Email', value=view.email).props('readonly').classes('w-full'),
            'name': ui.input('Your name').props('autocomplete=name autofocus maxlength=100').classes('w-full'),
            'password': new_password_input(),
        }
        ip, agent = session.client_ip(), session.user_agent()

        async def accept() -> None:
            name, password = fields['name'].value or '', fields['password'].value or ''
            joined = await actions.submit(
                lambda: invitations.accept_with_password(
                    scopes=SCOPES, token=token, name=name, password=password, ip=ip, user_agent=agent
                ),
                button=button,
                fields=fields,
            )
            if joined is None:
                return
            sign_in_binding.go(session.next_url(joined.next_step))

        fields['password'].on('keydown.enter', accept)
        button = ui.button('Accept invitation', on_click=accept).props('no-caps').classes('w-full')
        accept_button(token)  # `Accept with <name>`, when single sign-on is configured
