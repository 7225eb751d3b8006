"""Tab `Activity`: the audit log, newest first (admins)."""

from nicegui import ui

from models import User
from services import audit
from services.db import write_scope

COLUMNS = [
    {'name': 'when', 'label': 'When', 'field': 'when', 'align': 'left'},
    {'name': 'who', 'label': 'Who', 'field': 'who', 'align': 'left'},
    {'name': 'what', 'label': 'What', 'field': 'what', 'align': 'left'},
    {'name': 'target', 'label': 'Target', 'field': 'target', 'align': 'left'},
    {'name': 'ip', 'label': 'Client IP', 'field': 'ip', 'align': 'left'},
]


def build(*, user: User, tab: ui.tab, tabs: ui.tabs) -> None:
    with ui.card().classes('w-full'):
        with ui.row().classes('w-full items-center'):
            ui.label('Activity').classes('text-h6')
            ui.space()
            ui.button('Refresh', icon='refresh', on_click=lambda: table.update_rows(_rows(user))).props('flat no-caps')
        table = ui.table(columns=COLUMNS, rows=_rows(user), row_key='id', pagination=25)
        table.classes('w-full').props('flat wrap-cells').mark('activity-table')
    # Fresh rows whenever the admin opens the tab.
    tabs.on_value_change(lambda e: table.update_rows(_rows(user)) if e.value == tab.props['name'] else None)


def _rows(user: User) -> list[dict]:
    with write_scope() as session:
        events = audit.list_events(session=session, actor=user)
    return [
        {
            'id': event.id,
            'when': event.created_at.strftime('%Y-%m-%d %H:%M:%S UTC'),
            'who': event.actor_email or 'system',
            'what': event.action,
            'target': event.target or '',
            'ip': event.ip or '',
        }
        for event in events
    ]
