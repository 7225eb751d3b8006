"""In-app help pages linked from the dashboard."""

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from services.team import organizations
from ui import actions, session, theme

_PAGES = {
    'sidekick': (
        'Sidekick',
        'Sidekick runs inside Kustomer beside each conversation. In your Kustomer app settings, paste the '
        'organization API key from Dashboard Settings → Step 1. Sidekick calls this dashboard to learn which '
        'Kustomer subdomain to use, so save your subdomains in Step 2 first.\n\n'
        'Members see only the masked key: ask an admin of your organization for it. An admin reveals it with '
        '"Reveal API Key" under Step 1 and can paste it into the Kustomer app settings for you.',
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
        '"Forgot password?" on the sign-in page.\n\n'
        'No reset email arrives, or the server has no mail server: ask an admin of your organization. An admin can '
        'copy a one-time reset link for you from the team list under User Management. Whoever runs the server can '
        'also print one with "uv run main.py reset-password EMAIL", or lift a lockout with "uv run main.py unlock '
        'EMAIL".',
    ),
}
# Readable without signing in: it is where people who cannot sign in are sent.
PUBLIC_TOPICS = {'troubleshooting'}


@ui.page('/help/{topic}')
async def help_page(topic: str, request: Request) -> RedirectResponse | None:
    user = await actions.signed_in_user()
    if user is None and topic not in PUBLIC_TOPICS:
        return session.login_redirect(request)
    organization = (
        await actions.read(lambda db: organizations.get_organization(session=db, actor=user))
        if user is not None
        else None
    )
    if topic not in _PAGES:
        raise HTTPException(status_code=404)  # our own 404 page (ui/pages/not_found.py), with its status
    title, body = _PAGES[topic]
    with theme.frame(title, user=user, organization=organization):
        if user is None:
            ui.link('← Back to sign in', '/login')
        else:
            ui.link('← Back to the dashboard', '/')
        for paragraph in body.split('\n\n'):
            ui.label(paragraph).classes('text-body1 max-w-3xl')
    return None
