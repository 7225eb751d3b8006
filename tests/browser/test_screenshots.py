"""What a person sees: screenshots of every screen, taken by walking through the product like a new customer.

They go to `CXT_SCREENSHOTS_DIR`, by default `<CXT_TEST_ARTIFACTS>/screenshots`, so an ordinary test run leaves the
checkout clean. To refresh the pictures the README shows:

    CXT_SCREENSHOTS_DIR=docs/screenshots uv run pytest tests/browser/test_screenshots.py
"""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import (
    ADMIN,
    ARTIFACTS,
    KEY,
    MASKED_KEY,
    ORGANIZATION,
    PHONE,
    REPO_ROOT,
    Person,
    api_key_field,
    button,
    overflow,
    sign_in,
)
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.browser

MEMBER = Person('Grace Hopper', 'grace@example.com')
PENDING = 'linus@example.com'
SCREEN = {'width': 1280, 'height': 800}
# Read at import: tests/conftest.py clears every CXT_* variable around each test.
SCREENSHOTS = (
    REPO_ROOT / os.environ['CXT_SCREENSHOTS_DIR']
    if os.environ.get('CXT_SCREENSHOTS_DIR')
    else ARTIFACTS / 'screenshots'
)


def screenshots_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def snap(page: Page, name: str) -> None:
    """Save the whole page once no notification is showing (they would hide part of it)."""
    expect(page.locator('.q-notification')).to_have_count(0, timeout=15_000)
    assert overflow(page) is None, f'{name}: {overflow(page)}'
    page.screenshot(path=str(screenshots_dir() / f'{name}.png'), full_page=True, animations='disabled')


def test_screenshots_of_every_screen(
    app: AppProcess,
    smtp: SmtpServer,
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(app, viewport=SCREEN).new_page()
    page.goto('/setup')
    page.get_by_label('Organization name').fill(ORGANIZATION)
    page.get_by_label('Your name').fill(ADMIN.name)
    page.get_by_label('Email').fill(ADMIN.email)
    page.get_by_label('Password').fill(ADMIN.password)
    page.get_by_label('Organization name').focus()
    snap(page, 'setup')
    button(page, 'Create organization').click()
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()

    # The admin's first steps: a key, the subdomains, a teammate who accepted and one who has not yet.
    button(page, 'Generate API Key').click()
    expect(api_key_field(page)).to_have_value(KEY)
    page.get_by_label('Kustomer Organization Sub Domain').fill('acme')
    page.get_by_label('Kustomer Sandbox Organization Sub Domain').fill('acme-sandbox')
    button(page, 'Save').click()
    expect(page.get_by_text('Subdomains saved')).to_be_visible()
    page.get_by_role('tab', name='User Management').click()
    mails_before = len(smtp.messages)
    for email in (MEMBER.email, PENDING):
        page.get_by_label('Email').fill(email)
        button(page, 'Send Invite').click()
        expect(page.get_by_text(f'Invitation sent to {email}')).to_be_visible()
    link = next(
        mail.links[0] for mail in smtp.wait_for(mails_before + 2)[mails_before:] if mail.recipients == [MEMBER.email]
    )
    member = new_context(app, viewport=SCREEN).new_page()
    member.goto(link)
    member.get_by_label('Your name').fill(MEMBER.name)
    member.get_by_label('Password').fill(MEMBER.password)
    member.get_by_label('Your name').focus()
    snap(member, 'accept-invitation')
    button(member, 'Accept invitation').click()
    expect(member.get_by_text(f'Signed in as {MEMBER.email}')).to_be_visible()

    visitor = new_context(app, viewport=SCREEN).new_page()
    visitor.goto('/login')
    snap(visitor, 'login')

    admin = new_context(app, viewport=SCREEN).new_page()
    sign_in(admin)
    expect(api_key_field(admin)).to_have_value(MASKED_KEY)
    admin.locator('body').click(position={'x': 5, 'y': 300})  # no focus ring on the first field
    snap(admin, 'dashboard-settings')
    button(admin, 'Reveal API Key').click()
    expect(api_key_field(admin)).to_have_value(KEY)
    snap(admin, 'dashboard-settings-revealed')
    button(admin, 'Hide API Key').click()

    admin.get_by_role('tab', name='User Management').click()
    expect(admin.get_by_text(PENDING, exact=True)).to_be_visible()
    expect(admin.get_by_text(MEMBER.email, exact=True)).to_be_visible()
    snap(admin, 'user-management')

    admin.get_by_role('tab', name='Activity').click()
    expect(admin.get_by_text('Accepted an invitation').first).to_be_visible()
    snap(admin, 'activity')

    admin.goto('/security')
    expect(admin.get_by_role('button', name='Set up authenticator app')).to_be_visible()
    snap(admin, 'security')

    # What a member sees: the key and the subdomains as information.
    member.goto('/')
    expect(member.get_by_text('Ask an admin to rotate or reveal the key')).to_be_visible()
    snap(member, 'member-dashboard-settings')

    phone = new_context(app, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True).new_page()
    sign_in(phone)
    snap(phone, 'phone-dashboard-settings')
    phone.get_by_role('tab', name='User Management').click()
    expect(phone.get_by_text('Team Members')).to_be_visible()
    snap(phone, 'phone-user-management')
    phone.get_by_role('tab', name='Activity').click()
    expect(phone.get_by_text('Accepted an invitation').first).to_be_visible()
    snap(phone, 'phone-activity')

    names = sorted(path.name for path in screenshots_dir().glob('*.png'))
    for expected in (
        'setup.png',
        'login.png',
        'dashboard-settings.png',
        'dashboard-settings-revealed.png',
        'user-management.png',
        'activity.png',
        'phone-dashboard-settings.png',
        'phone-activity.png',
        'member-dashboard-settings.png',
        'security.png',
    ):
        assert expected in names
