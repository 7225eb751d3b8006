"""Tab `Activity`: the audit log, newest first (admins)."""

from nicegui import ui
from sqlmodel import Session

from models import User
from models.audit import action_label
from services import audit
from ui import actions

COLUMNS = [
    {'name': 'when', 'label': 'When', 'field': 'when', 'align': 'left'},
    {'name': 'who', 'label': 'Who', 'field': 'who', 'align': 'left'},
    {'name': 'what', 'label': 'What', 'field': 'what', 'align': 'left'},
    {'name': 'target', 'label': 'Target', 'field': 'target', 'align': 'left'},
    {'name': 'ip', 'label': 'Client IP', 'field': 'ip', 'align': 'left'},
]


async def build(*, user: User, tab: ui.tab, tabs: ui.tabs) -> None:
    async def refresh() -> None:
        rows = await actions.act(lambda db, me: _rows(db, me.user), read_only=True)
        if rows is not None:
            table.update_rows(rows)

    with ui.card().classes('w-full'):
        with ui.row().classes('w-full items-center'):
            ui.label('Activity').classes('text-h6')
            ui.space()
            ui.button('Refresh', icon='refresh', on_click=refresh).props('flat no-caps')
        rows = await actions.read(lambda db: _rows(db, user))
        table = ui.table(columns=COLUMNS, rows=rows, row_key='id', pagination=25)
        table.classes('w-full').props('flat wrap-cells').mark('activity-table')

    async def on_tab_change(event: object) -> None:
        if tabs.value == tab.props['name']:
            await refresh()  # fresh rows whenever the admin opens the tab

    tabs.on_value_change(on_tab_change)


def _rows(db: Session, user: User) -> list[dict]:
    return [
        {
            'id': event.id,
            'when': event.created_at.strftime('%Y-%m-%d %H:%M:%S UTC'),
            'who': event.actor_email or 'system',
            'what': action_label(event.action),
            'target': event.target or '',
            'ip': event.ip or '',
        }
        for event in audit.list_events(session=db, actor=user)
    ]
