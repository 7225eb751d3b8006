"""`/invite/<token>`: accept an invitation, choosing a name and a password."""

from nicegui import ui

from models import LinkState, User
from services.db import write_scope
from services.identity import auth, invitations
from ui import actions, session, sign_in_binding, theme
from ui.components.forms import new_password_input
from ui.components.single_sign_on import accept_button
from ui.pages.two_factor import after_password

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
            accepted = await actions.submit(
                lambda: _accept(token, name, password, ip, agent), button=button, fields=fields
            )
            if accepted is None:
                return
            _user, destination = accepted
            sign_in_binding.go(destination)

        fields['password'].on('keydown.enter', accept)
        button = ui.button('Accept invitation', on_click=accept).props('no-caps').classes('w-full')
        accept_button(token)  # `Accept with <name>`, when single sign-on is configured


def _accept(token: str, name: str, password: str, ip: str | None, user_agent: str | None) -> tuple[User, str]:
    """The new account and where its browser goes: its first session, or setting up a second factor first when the
    organization requires one."""
    auth.validate_name(name)
    password_hash = auth.new_password_hash(password)  # bcrypt before the transaction, not inside it
    with write_scope() as db:
        user = invitations.accept_invitation(session=db, token=token, name=name, password_hash=password_hash, ip=ip)
        return user, after_password(db, user, ip, user_agent)
