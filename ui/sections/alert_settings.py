"""Card `Security alerts` on the Security page: each person's own switch for the alert emails
(services/team/alerts.py)."""

from nicegui import events, ui

from models import User
from services.config import current_settings
from services.team import alerts
from ui import actions, theme

SWITCH_LABEL = 'Email me about key and team changes'
EXPLANATION = (
    'Admins get an email when the API key is revealed, rotated or an old key revoked, when someone becomes an admin '
    'and when an admin is removed, and when anyone changes how they sign in (a password changed or reset, an '
    'authenticator app or passkey added, two-factor turned off or reset, or no longer required): who did it, when '
    'and from which address.'
)
NO_MAIL_SERVER = 'No mail server is configured, so no alerts are sent: the Activity tab is the record.'


def alerts_card(*, user: User) -> None:
    with ui.card().classes('w-full'):
        theme.heading('Security alerts')
        ui.label(EXPLANATION).classes('text-sm text-grey-8')

        async def changed(event: events.ValueChangeEventArguments) -> None:
            enabled = bool(event.value)
            if enabled == user.alerts_enabled:
                return
            saved = await actions.act(
                lambda db, me: alerts.set_alerts_enabled(session=db, actor=me, enabled=enabled),
                recent_password=True,
                purpose='turn security alerts on' if enabled else 'turn security alerts off',
            )
            if saved is None:  # refused or failed (the person has been told): show what is stored
                switch.set_value(user.alerts_enabled)
                return
            user.alerts_enabled = saved.alerts_enabled
            ui.notify('Security alerts on' if enabled else 'Security alerts off', type='positive')

        switch = ui.switch(SWITCH_LABEL, value=user.alerts_enabled, on_change=changed).mark('security-alerts')
        if not current_settings().mail_configured:
            ui.label(NO_MAIL_SERVER).classes('text-sm text-grey-8').mark('alerts-no-mail')
