"""`/organization` (admins): the organization's own settings, beside each person's Security page; members go to `/`."""

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from models import Role
from services.team import organizations
from ui import actions, session, theme
from ui.sections.organization_rules import OrganizationRules
from ui.sections.single_sign_on_settings import SingleSignOnCard

ORGANIZATION_PATH = '/organization'


@ui.page(ORGANIZATION_PATH)
async def organization_page(request: Request) -> RedirectResponse | None:
    user = await actions.signed_in_user()
    if user is None:
        return session.login_redirect(request)
    if user.role != Role.ADMIN:
        return RedirectResponse('/')
    organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=user))
    with theme.frame('Organization', user=user, organization=organization):
        ui.link('← Back to the dashboard', '/')
        OrganizationRules(organization=organization)
        SingleSignOnCard(user=user, organization=organization, organization_settings=True)  # `Require single sign-on …`
    return None
