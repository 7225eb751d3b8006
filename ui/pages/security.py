"""`/security`: the signed-in person's own sessions (sign one out, or all), password, second factors and alerts.

Every card is the page's full width. The organization's rules (two-factor for everyone) are not personal settings:
they live on `/organization` (admins), linked from here and from the header."""

import functools
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import context, ui

from models import Role
from services.acting import SCOPES
from services.identity import account, sessions
from services.team import organizations
from ui import actions, open_pages, session, theme
from ui.components import times
from ui.components.forms import new_password_input, password_input
from ui.pages.login import SIGNED_OUT_EVERYWHERE
from ui.pages.organization import ORGANIZATION_PATH
from ui.sections.alert_settings import alerts_card
from ui.sections.passkeys import browser_name, passkeys_section
from ui.sections.single_sign_on_settings import SingleSignOnCard
from ui.sections.two_factor_settings import TwoFactorCard


@ui.page('/security')
async def security_page(request: Request) -> RedirectResponse | None:
    signed = await actions.signed_in()
    if signed is None:
        return session.login_redirect(request)
    user = signed.user
    organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=user))
    with theme.frame('Security', user=user, organization=organization):
        ui.link('← Back to the dashboard', '/')
        assert user.id is not None
        sessions_card = SessionsCard(current_session_id=signed.session_id, user_id=user.id)
        _password_card(after_change=sessions_card.reload)
        TwoFactorCard()
        if user.role == Role.ADMIN:
            with ui.row().classes('items-center gap-1 text-body2'):
                ui.label('Rules for everyone in your organization, like requiring two-factor authentication:')
                ui.link('Organization', ORGANIZATION_PATH)
        SingleSignOnCard(user=user, organization=organization)  # the provider owns a single sign-on's second factor
        passkeys_section()
        if user.role == Role.ADMIN:  # alerts go to admins only
            alerts_card(user=user)  # `Email me about key and team changes`
    return None


class SessionsCard:
    """Card `Active sessions`: every browser signed in as this person, named like `Chrome on Linux`, each with
    `Sign out`. A session ended anywhere (here, on another page, by a password change) leaves the list at once."""

    def __init__(self, *, current_session_id: int, user_id: int) -> None:
        self.current_session_id = current_session_id
        self.client = context.client
        self.user_id = user_id
        with ui.card().classes('w-full'):
            theme.heading('Active sessions')
            ui.label('Every browser signed in to your account. Sign out any you do not recognise.').classes(
                'text-sm text-grey-8'
            )
            self.container = ui.column().classes('w-full gap-2')
            self.everywhere = ui.button('Sign out everywhere', icon='logout', on_click=self.sign_out_everywhere)
            self.everywhere.props('outline no-caps color=negative')
        open_pages.show_sessions(self)
        ui.timer(0, self.reload, once=True)

    async def reload(self) -> None:
        listed = await actions.act(
            lambda db, me: sessions.list_for(session=db, user=me.user, current_session_id=me.session_id),
            read_only=True,
        )
        if listed is None:
            return
        self.container.clear()
        with self.container:
            for info in listed:
                with (
                    ui.row()
                    .classes('w-full items-center no-wrap gap-3 rounded-borders border border-gray-300 q-pa-sm')
                    .mark(f'session-{info.id}')
                ):
                    with ui.column().classes('gap-0 flex-1 min-w-0'):
                        # The badge sits on the name's line and wraps under it on a narrow screen, never over text.
                        with ui.row().classes('items-center gap-x-2 gap-y-1 flex-wrap'):
                            name = browser_name(info.user_agent) or 'Unknown browser'
                            ui.label(name).classes('text-body2 text-weight-medium').mark('session-name')
                            if info.current:
                                ui.badge('This browser').props('outline').mark('current-session')
                        with ui.row().classes('gap-x-1 gap-y-0 text-xs text-grey-8 items-center'):
                            ui.label(f'{info.ip} ·')
                            times.time_text(info.last_seen_at, prefix='last seen ')
                            ui.label('·').props('aria-hidden=true')
                            times.time_text(info.created_at, prefix='signed in ')
                    end = ui.button('Sign out', on_click=functools.partial(self.sign_out, info.id))
                    end.props(f'flat dense no-caps aria-label="Sign out {name}"').mark(f'end-session-{info.id}')

    async def sign_out(self, session_id: int) -> None:
        if session_id == self.current_session_id:
            await actions.sign_out()
            return
        ended = await actions.act(lambda db, me: sessions.end_one(session=db, user=me.user, session_id=session_id))
        if ended is None:
            return
        ui.notify('That browser is signed out', type='positive')

    async def sign_out_everywhere(self) -> None:
        """Confirmed first: it signs this browser out too."""
        with theme.dialog_card('Sign out everywhere?', width='max-w-md') as dialog:
            ui.label(
                'Every browser signed in to your account is signed out, this one too: you will need to sign in '
                'again here. Use it when you think someone else is signed in as you.'
            ).classes('text-body2')
            with ui.row().classes('w-full justify-end gap-2'):
                ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat no-caps')
                ui.button('Sign out everywhere', on_click=lambda: dialog.submit(True)).props(
                    'no-caps color=negative'
                ).mark('confirm-sign-out-everywhere')
        if await dialog is not True:
            return
        ended = await actions.act(
            lambda db, me: account.sign_out_everywhere(session=db, actor=me), button=self.everywhere
        )
        if ended is not None:
            open_pages.own_change_shown(self)  # its list, reloaded, would go to /login without saying why
            open_pages.leaving()  # and so would the session's end, sent to every open page of this person
            ui.navigate.to(f'/login?signed_out={SIGNED_OUT_EVERYWHERE}')


def _password_card(*, after_change: Callable[[], Awaitable[None]]) -> None:
    with ui.card().classes('w-full'):
        theme.heading('Change password')
        ui.label('Every other browser signed in to your account will be signed out.').classes('text-sm text-grey-8')
        current = password_input('Current password').mark('current-password')
        chosen = new_password_input('New password').mark('new-password')
        fields = {'current_password': current, 'password': chosen}

        async def change() -> None:
            entered, new = current.value or '', chosen.value or ''
            changed = await actions.act_stepwise(
                lambda me: account.change_password(scopes=SCOPES, actor=me, current_password=entered, new_password=new),
                fields=fields,
                button=button,
            )
            if changed is not None:
                current.value = chosen.value = ''
                ui.notify('Password changed. Other browsers are signed out.', type='positive')
                await after_change()  # the other browsers leave the sessions list

        chosen.on('keydown.enter', change)
        button = ui.button('Change password', on_click=change).props('no-caps')
