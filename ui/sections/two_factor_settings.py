"""The Security page's two-factor card: the person's own authenticator app (set up, new recovery codes, turn off). The
organization's `Require two-factor authentication for everyone` is in `ui/sections/organization_rules.py`."""

from collections.abc import Mapping

from nicegui import ui
from sqlmodel import Session

from services.acting import SCOPES, Actor
from services.identity import two_factor, two_factor_settings
from ui import actions, theme
from ui.sections.authenticator import AuthenticatorSetUp, code_input


class TwoFactorCard:
    """Card `Two-factor authentication`: `Set up authenticator app`, or its state with `New recovery codes` and
    `Turn off`."""

    def __init__(self) -> None:
        with ui.card().classes('w-full'):
            theme.heading('Two-factor authentication')
            self.body = ui.column().classes('w-full gap-3')
        ui.timer(0, self.reload, once=True)

    async def reload(self) -> None:
        state = await actions.act(lambda db, me: two_factor.status(session=db, user=me.user), read_only=True)
        if state is None:
            return
        self.body.clear()
        with self.body:
            if state.app_on:
                since = f'{state.confirmed_at:%Y-%m-%d}' if state.confirmed_at else ''
                ui.label(f'Authenticator app: on since {since}').classes('text-body1').mark('two-factor-status')
                ui.label(f'Recovery codes left: {state.recovery_codes_left} of {two_factor.RECOVERY_CODE_COUNT}')
                with ui.row().classes('gap-2'):
                    ui.button('New recovery codes', on_click=self.renew).props('outline no-caps')
                    if not state.required:
                        ui.button('Turn off', on_click=self.turn_off).props('outline no-caps color=negative')
                if state.required:
                    ui.label('Your organization requires two-factor authentication.').classes('text-sm text-grey-8')
                return
            ui.label(
                'After your password, sign-in asks for a 6-digit code from an authenticator app on your phone.'
            ).classes('text-sm text-grey-8')
            self.start = ui.button('Set up authenticator app', on_click=self.set_up).props('no-caps')
            self.set_up_area = ui.column().classes('w-full gap-3')

    def _set_up(self, container: ui.element) -> AuthenticatorSetUp:
        async def begin() -> two_factor.Enrolment | None:
            return await actions.act(
                lambda db, me: two_factor.begin_enrolment(session=db, actor=me),
                recent_password=True,
                purpose='set up an authenticator app',
            )

        async def confirm(code: str, button: ui.button, fields: Mapping[str, ui.element]) -> list[str] | None:
            return await actions.act_stepwise(
                lambda me: two_factor_settings.confirm_set_up(scopes=SCOPES, actor=me, code=code),
                button=button,
                fields=fields,
            )

        return AuthenticatorSetUp(container, begin=begin, confirm=confirm, done=self.reload, cancel=self.cancel_set_up)

    async def set_up(self) -> None:
        if await self._set_up(self.set_up_area).show():
            self.start.set_visibility(False)

    async def cancel_set_up(self) -> None:
        """Back to `Set up authenticator app`; nothing was switched on (the unconfirmed secret is never used)."""
        self.start.set_visibility(True)
        # Focus where the set-up began, once it is drawn again (asked before the Cancel button itself goes away).
        self.start.client.run_javascript(f'setTimeout(() => getHtmlElement({self.start.id})?.focus(), 100)')
        self.set_up_area.clear()

    async def renew(self) -> None:
        codes = await actions.act(
            lambda db, me: two_factor.new_recovery_codes(session=db, actor=me),
            recent_password=True,
        )
        if codes is not None:
            self._set_up(self.body).show_recovery_codes(codes)

    async def turn_off(self) -> None:
        done = await actions.act(_turn_off, recent_password=True)
        if done:
            ui.notify('Two-factor authentication is off', type='positive')
            await self.reload()


def _turn_off(db: Session, me: Actor) -> bool:
    two_factor.turn_off(session=db, actor=me)
    return True


async def reset_member_second_factor(member_id: int, member_name: str) -> bool:
    """`Reset two-factor` for a member (admins, from the team list): a dialog asking for a code from the admin's own
    authenticator app (their recent password is asked for first when needed); True once reset."""
    with ui.dialog() as dialog, ui.card().classes('w-full max-w-sm'):
        title = theme.heading(f'Reset two-factor for {member_name}', level=2)
        ui.label(
            f'{member_name} signs in with their password alone next time (and sets up a new authenticator app first '
            'when your organization requires one). Their recovery codes and passkeys stop working.'
        ).classes('text-body2')
        code = code_input('Your authentication code')
        ui.label('From your own authenticator app, or one of your recovery codes.').classes('text-sm text-grey-8')

        async def reset() -> None:
            entered = code.value or ''
            done = await actions.act_stepwise(
                lambda me: two_factor_settings.reset_member(scopes=SCOPES, actor=me, member_id=member_id, code=entered),
                button=button,
                fields={'code': code},
                recent_password=True,
            )
            if done:
                dialog.submit(True)

        code.on('keydown.enter', reset)
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat no-caps')
            button = (
                ui.button('Reset two-factor', on_click=reset).props('no-caps color=negative').mark('confirm-reset-2fa')
            )
    dialog.props(f'aria-labelledby=c{title.id}')
    reset_done = await dialog
    dialog.delete()
    if reset_done is True:
        ui.notify(f'Two-factor authentication reset for {member_name}', type='positive')
        return True
    return False
