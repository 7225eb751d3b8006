"""Tab `User Management`: the team (invitations and removal build on this)."""

from nicegui import ui

from models import User
from services import members
from services.db import session_scope


def build(*, user: User) -> None:
    with ui.card().classes('w-full'):
        ui.label('Team Members').classes('text-h6')
        with session_scope() as session:
            team = members.list_members(session=session, actor=user)
        with ui.element('div').classes('w-full overflow-x-auto'):
            with ui.grid(columns='minmax(8rem,1fr) minmax(12rem,2fr) auto auto auto').classes(
                'w-full items-center gap-x-4 gap-y-2 min-w-[36rem]'
            ):
                for heading in ('Name', 'Email', 'Role', 'Status', ''):
                    ui.label(heading).classes('text-xs text-grey-7 uppercase')
                for member in team:
                    ui.label(member.name).mark(f'member-name-{member.id}')
                    ui.label(member.email)
                    ui.label(member.role)
                    ui.label(member.status)
                    if member.id == user.id:
                        ui.badge('You').props('outline')
                    else:
                        ui.label('')
