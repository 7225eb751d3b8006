"""In-app help pages linked from the dashboard."""

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from services import organizations
from ui import actions, session, theme

_PAGES = {
    'sidekick': (
        'Sidekick',
        'Sidekick runs inside Kustomer beside each conversation. In your Kustomer app settings, paste the '
        'organization API key from Dashboard Settings → Step 1. Sidekick calls this dashboard to learn which '
        'Kustomer subdomain to use, so save your subdomains in Step 2 first.',
    ),
    'task-kanban': (
        'Task Kanban',
        "Task Kanban shows your team's tasks as a board inside Kustomer. It uses the same organization API key "
        'as every other CX Toolbox widget: configure it once per app with that same value.',
    ),
    'troubleshooting': (
        'Troubleshooting',
        'A widget says the API key is invalid: the key was rotated. Reveal the current key under Step 1 and '
        'paste it into every Kustomer app setting that uses it.\n\n'
        'A widget cannot reach the dashboard from Kustomer: check that the subdomain in Step 2 matches the '
        'address agents use (the part before .kustomerapp.com); only those origins may call the API from a '
        'browser.\n\n'
        'Nobody can sign in: after 5 wrong passwords an email is locked for 15 minutes; wait, or use '
        '"Forgot password?" on the sign-in page.',
    ),
}


@ui.page('/help/{topic}')
async def help_page(topic: str, request: Request) -> RedirectResponse | None:
    user = await actions.signed_in_user()
    if user is None:
        return session.login_redirect(request)
    organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=user))
    title, body = _PAGES.get(topic, ('Help', 'There is no help page with that name.'))
    with theme.frame(title, user=user, organization=organization):
        ui.link('← Back to the dashboard', '/')
        ui.label(title).classes('text-h5')
        for paragraph in body.split('\n\n'):
            ui.label(paragraph).classes('text-body1 max-w-3xl')
    return None
