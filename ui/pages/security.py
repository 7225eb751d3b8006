"""`/security`: the signed-in person's own sessions (sign one out, or all) and their password."""

import functools

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from sqlmodel import Session

from models import AuditAction, Role
from services import auth, organizations, sessions
from services.audit import record_event
from services.db import write_scope
from services.errors import ValidationFailed
from ui import actions, session, theme
from ui.components.alert_settings import alerts_card
from ui.components.forms import new_password_input, password_input
from ui.components.passkeys import passkeys_section
from ui.components.single_sign_on_settings import SingleSignOnCard
from ui.components.two_factor_settings import RequirementCard, TwoFactorCard


@ui.page('/security')
async def security_page(request: Request) -> RedirectResponse | None:
    signed = await actions.signed_in()
    if signed is None:
        return session.login_redirect(request)
    user = signed.user
    organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=user))
    with theme.frame('Security', user=user, organization=organization):
        ui.link('← Back to the dashboard', '/')
        SessionsCard(current_session_id=signed.session_id)
        _password_card()
        TwoFactorCard()
        if user.role == Role.ADMIN:
            RequirementCard(required=organization.require_two_factor)
        SingleSignOnCard(user=user, organization=organization)  # admins: `Require single sign-on for everyone`
        passkeys_section()
        if user.role == Role.ADMIN:  # alerts go to admins only
            alerts_card(user=user)  # `Email me about key and team changes`
    return None


class SessionsCard:
    """Card `Active sessions`: every browser signed in as this person, each with `Sign out`."""

    def __init__(self, *, current_session_id: int) -> None:
        self.current_session_id = current_session_id
        with ui.card().classes('w-full'):
            theme.heading('Active sessions')
            ui.label('Every browser signed in to your account. Sign out any you do not recognise.').classes(
                'text-sm text-grey-8'
            )
            self.container = ui.column().classes('w-full gap-2')
            self.everywhere = ui.button('Sign out everywhere', icon='logout', on_click=self.sign_out_everywhere)
            self.everywhere.props('outline no-caps color=negative')
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
                with ui.row().classes('w-full items-center gap-3 rounded-borders border border-gray-300 q-pa-sm'):
                    with ui.column().classes('gap-0 flex-1 min-w-0'):
                        ui.label(info.user_agent).classes('text-body2 break-words')
                        ui.label(
                            f'{info.ip} · last seen {info.last_seen_at:%Y-%m-%d %H:%M UTC} · '
                            f'signed in {info.created_at:%Y-%m-%d %H:%M UTC}'
                        ).classes('text-xs text-grey-8')
                    if info.current:
                        ui.badge('This browser').props('outline').mark('current-session')
                    ui.button('Sign out', on_click=functools.partial(self.sign_out, info.id)).props(
                        'flat dense no-caps'
                    ).mark(f'end-session-{info.id}')

    async def sign_out(self, session_id: int) -> None:
        if session_id == self.current_session_id:
            await actions.sign_out()
            return
        ended = await actions.act(lambda db, me: sessions.end_one(session=db, user=me.user, session_id=session_id))
        if ended is None:
            return
        ui.notify('That browser is signed out', type='positive')
        await self.reload()

    async def sign_out_everywhere(self) -> None:
        ended = await actions.act(_end_every_session, button=self.everywhere)
        if ended is not None:
            ui.navigate.to('/login')


def _end_every_session(db: Session, me: actions.Actor) -> int:
    assert me.user.id is not None
    ended = sessions.end_all(session=db, user_id=me.user.id)
    record_event(
        session=db,
        organization_id=me.user.organization_id,
        actor=me.user,
        action=AuditAction.SIGNED_OUT_EVERYWHERE,
        target=f'{ended} sessions',
        ip=me.ip,
    )
    return ended


def _password_card() -> None:
    with ui.card().classes('w-full max-w-lg'):
        theme.heading('Change password')
        ui.label('Every other browser signed in to your account will be signed out.').classes('text-sm text-grey-8')
        current = password_input('Current password').mark('current-password')
        chosen = new_password_input('New password').mark('new-password')
        fields = {'current_password': current, 'password': chosen}

        async def change() -> None:
            entered, new = current.value or '', chosen.value or ''
            changed = await actions.act_stepwise(
                lambda me: _change_password(me, entered, new), fields=fields, button=button
            )
            if changed is not None:
                current.value = chosen.value = ''
                ui.notify('Password changed. Other browsers are signed out.', type='positive')

        chosen.on('keydown.enter', change)
        button = ui.button('Change password', on_click=change).props('no-caps')


def _change_password(me: actions.Actor, current: str, new: str) -> bool:
    """Check the new password's rules, confirm the current one (throttled and audited like a sign-in), hash the new
    one outside any transaction, then store it and end the other sessions."""
    auth.validate_password(new)
    if not actions.password_is_right(me.user, current, me.ip):
        raise ValidationFailed('Wrong password', field='current_password')
    password_hash = auth.hash_password(new)
    with write_scope() as db:
        auth.change_password(
            session=db, user=me.user, password_hash=password_hash, keep_session_id=me.session_id, ip=me.ip
        )
    return True
