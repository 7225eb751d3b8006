"""`/`: the dashboard with its three tabs."""

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from models import Role
from services import organizations
from ui import actions, open_pages, session, theme
from ui.tabs import activity, settings, team

HELP_LINKS = {
    'Sidekick': '/help/sidekick',
    'Task Kanban': '/help/task-kanban',
    'Troubleshooting': '/help/troubleshooting',
}


@ui.page('/')
async def dashboard_page(request: Request, billing: str | None = None) -> RedirectResponse | None:
    user = await actions.signed_in_user()
    if user is None:
        return session.login_redirect(request)
    open_pages.track_page(user)
    organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=user))
    is_admin = user.role == Role.ADMIN
    with theme.frame('Dashboard', user=user, organization=organization):
        with ui.tabs().props('no-caps align=left inline-label').classes('w-full bg-white rounded-borders') as tabs:
            settings_tab = ui.tab('Dashboard Settings', icon='vpn_key')
            team_tab = ui.tab('User Management', icon='group')
            activity_tab = ui.tab('Activity', icon='history') if is_admin else None
        with ui.tab_panels(tabs, value=settings_tab).classes('w-full bg-transparent'):
            with ui.tab_panel(settings_tab).classes('q-pa-none'):
                await settings.build(user=user, organization=organization, billing_return=billing)
            with ui.tab_panel(team_tab).classes('q-pa-none'):
                await team.build(user=user)
            if activity_tab is not None:
                with ui.tab_panel(activity_tab).classes('q-pa-none'):
                    await activity.build(user=user, tab=activity_tab, tabs=tabs)
        with ui.row().classes('gap-4 text-sm items-center'):
            ui.label('Help:').classes('text-grey-8')
            for label, target in HELP_LINKS.items():
                ui.link(label, target)
    return None
