"""`/`: the dashboard with its three tabs."""

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from nicegui.events import GenericEventArguments

from models import Role
from services.team import organizations
from ui import actions, session, theme
from ui.sections import save_banner
from ui.tabs import activity, settings, team

HELP_LINKS = {
    'Sidekick': '/help/sidekick',
    'Task Kanban': '/help/task-kanban',
    'Troubleshooting': '/help/troubleshooting',
}


TAB_NAMES = {'settings': 'Dashboard Settings', 'team': 'User Management', 'activity': 'Activity'}

# Back and Forward between `/?tab=…` entries: the page hears it and shows that tab.
HISTORY_SCRIPT = """
<script>
window.addEventListener('popstate', () => {
  if (window.location.pathname !== '/') return;
  emitEvent('cxt_tab_from_history', new URLSearchParams(window.location.search).get('tab') || 'settings');
});
</script>
"""


def tab_url(key: str) -> str:
    return f'/?tab={key}'


@ui.page('/')
async def dashboard_page(
    request: Request, billing: str | None = None, role: str | None = None, tab: str | None = None
) -> RedirectResponse | None:
    user = await actions.signed_in_user()
    if user is None:
        return session.login_redirect(request)
    organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=user))
    is_admin = user.role == Role.ADMIN
    with theme.frame('Dashboard', user=user, organization=organization):
        save_banner.show()  # while the server cannot save, a banner says why
        with ui.tabs().props('no-caps align=left inline-label').classes('w-full bg-white rounded-borders') as tabs:
            settings_tab = ui.tab(TAB_NAMES['settings'], icon='vpn_key')
            team_tab = ui.tab(TAB_NAMES['team'], icon='group')
            activity_tab = ui.tab(TAB_NAMES['activity'], icon='history') if is_admin else None
        tab_elements = {'settings': settings_tab, 'team': team_tab}
        if activity_tab is not None:
            tab_elements['activity'] = activity_tab
        # `/?tab=team` (or activity) opens on that tab; anything else on Dashboard Settings.
        first = tab_elements.get(tab or '') or settings_tab
        builders: dict[str, Callable[[], Awaitable[object]]] = {
            settings_tab.props['name']: lambda: settings.build(
                user=user, organization=organization, billing_return=billing
            ),
            team_tab.props['name']: lambda: team.build(user=user, tab=team_tab, tabs=tabs),
        }
        if activity_tab is not None:
            builders[activity_tab.props['name']] = lambda: activity.build(user=user, tab=activity_tab, tabs=tabs)
        # Nothing is built for a tab until it is first opened: a page load that shows Dashboard Settings reads no
        # team list and no Activity. Until then its panel says it is loading.
        panels: dict[str, ui.tab_panel] = {}
        loading: dict[str, ui.spinner] = {}
        with ui.tab_panels(tabs, value=first.props['name']).classes('w-full bg-transparent'):
            for name in builders:
                with ui.tab_panel(name).classes('q-pa-none') as panels[name]:
                    loading[name] = ui.spinner(size='lg').classes('q-ma-lg')
                    loading[name].props(f'role=progressbar aria-label="Loading {name}"')
        built: set[str] = set()

        async def open_tab(name: object) -> None:
            if not isinstance(name, str) or name in built or name not in builders:
                return
            built.add(name)
            try:
                with panels[name]:
                    await builders[name]()
            finally:
                loading[name].delete()

        # The open tab is in the address (`/?tab=team`): each tab opened is a history entry, so Reload, Back and
        # bookmarks find it again. Back and Forward change the address without loading the page: the browser
        # tells the page (`cxt_tab_from_history`) and the tab follows, without a new entry.
        key_of = {tab_element.props['name']: key for key, tab_element in tab_elements.items()}
        shown_in_address = [key_of[first.props['name']]]

        def remember_in_address(name: object) -> None:
            key = key_of.get(name) if isinstance(name, str) else None
            if key is not None and key != shown_in_address[0]:
                shown_in_address[0] = key
                ui.navigate.history.push(tab_url(key))

        def follow_history(event: GenericEventArguments) -> None:
            key = event.args if isinstance(event.args, str) else ''
            shown_in_address[0] = key if key in tab_elements else 'settings'
            tabs.set_value(tab_elements[shown_in_address[0]].props['name'])

        # Listening first: a tab clicked while the first one is still being built is built too.
        tabs.on_value_change(lambda event: open_tab(event.value))
        tabs.on_value_change(lambda event: remember_in_address(event.value))
        ui.on('cxt_tab_from_history', follow_history)
        ui.add_body_html(HISTORY_SCRIPT)
        with ui.row().classes('gap-4 text-sm items-center'):
            ui.label('Help:').classes('text-grey-8')
            for label, target in HELP_LINKS.items():
                ui.link(label, target)
        # The first response is this frame: the browser draws it while the tab's reads run, and the tab's cards (with
        # the chart library they need) follow over the page's socket (bench/dashboard_load.py).
        client = ui.context.client
        await client.connected()
        if client.is_deleted:  # the browser never connected (a prefetch, a closed tab)
            return None
        await open_tab(first.props['name'])
        if role == 'changed':
            ui.notify(f'Your role changed to {user.role.label}', type='info', close_button='OK', timeout=0)
        if role is not None or (tab is not None and tab != shown_in_address[0]):
            # The address says the tab shown and nothing else (a notice's parameter would say it again on Reload).
            # (`billing=` is the Dashboard Settings card's own to clear.)
            ui.navigate.history.replace(tab_url(shown_in_address[0]))
    return None
