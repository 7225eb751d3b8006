"""Card `Single sign-on`: on each person's Security page, that the identity provider owns the second factor of a single
sign-on; on the admins' Organization page (`/organization`, with the other sign-in rules), also the provider, the
redirect URI to copy into it and the switch `Require single sign-on for everyone`."""

from nicegui import events, ui

from models import Organization, Role, User
from services.config import current_settings
from services.identity import single_sign_on
from ui import actions, theme

SWITCH_LABEL = 'Require single sign-on for everyone'


def second_factor_note() -> str:
    name = current_settings().oidc_name
    return (
        f'When you sign in with {name}, {name} asks for your second factor: this app does not ask again. '
        'Your own second factor here applies to sign-ins with a password.'
    )


class SingleSignOnCard:
    """Nothing while single sign-on is not configured on the server. `organization_settings`: the admins' part too."""

    def __init__(self, *, user: User, organization: Organization, organization_settings: bool = False) -> None:
        settings = current_settings()
        self._reverting = False
        if not settings.single_sign_on_configured:
            return
        with ui.card().classes('w-full').mark('single-sign-on-card'):
            theme.heading('Single sign-on')
            ui.label(second_factor_note()).classes('text-sm text-grey-8')
            if user.role != Role.ADMIN or not organization_settings:
                return
            ui.label(f'Provider: {settings.oidc_name} ({settings.oidc_issuer})').classes('text-body2 break-all')
            redirect = ui.input('Redirect URI', value=settings.oidc_redirect_uri).props('readonly').classes('w-full')
            redirect.mark('redirect-uri')
            with redirect.add_slot('append'):
                ui.button(
                    'Copy', on_click=lambda: ui.clipboard.write(settings.oidc_redirect_uri) or ui.notify('Copied')
                ).props('flat dense no-caps')
            ui.label('Copy it into the provider as the allowed redirect (callback) URI of this app.').classes(
                'text-sm text-grey-8'
            )
            self.switch = ui.switch(
                SWITCH_LABEL, value=organization.require_single_sign_on, on_change=self.changed
            ).mark('require-single-sign-on')
            ui.label(
                f'Members can no longer sign in or reset a password with a password: they use Sign in with '
                f'{settings.oidc_name}. Admins keep their password as the way back in when the provider is down; '
                'each such sign-in is recorded and emailed to the admins.'
            ).classes('text-sm text-grey-8')

    async def changed(self, event: events.ValueChangeEventArguments) -> None:
        if self._reverting:
            return
        required = bool(event.value)
        saved = await actions.act(
            lambda db, me: single_sign_on.set_requirement(session=db, actor=me, required=required),
            recent_password=True,
            purpose='change how everyone signs in',
        )
        if saved is None:
            self._reverting = True
            try:
                self.switch.value = not required
            finally:
                self._reverting = False
            return
        ui.notify(
            'Members now sign in with single sign-on only' if required else 'Single sign-on is no longer required',
            type='positive',
        )
