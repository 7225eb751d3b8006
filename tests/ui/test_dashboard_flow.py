"""A new admin's first minutes: setup, the dashboard, the key, the subdomains."""

from nicegui.testing import User

ADMIN_EMAIL = 'ada@example.com'
PASSWORD = 'correct horse battery'


async def set_up_organization(user: User) -> None:
    await user.open('/setup')
    user.find('Organization name').type('Acme Support')
    user.find('Your name').type('Ada Admin')
    user.find('Email').type(ADMIN_EMAIL)
    user.find('Password').type(PASSWORD)
    user.find('Create organization').click()
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')


async def test_setup_leads_to_dashboard(user: User) -> None:
    await set_up_organization(user)
    await user.should_see('Acme Support')
    await user.should_see('Dashboard Settings')
    await user.should_see('Step 1: Generate API Key')
    await user.should_see('Generate API Key')
    await user.should_see('Subscription: none')
