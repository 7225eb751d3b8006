"""A page open while the server restarts (every upgrade): a `Connection lost` banner across the page, saving off and
nothing saved, then the page reloads itself once the server is back, on the tab it showed."""

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import button, set_up_organization

pytestmark = pytest.mark.browser

RELOAD_TIMEOUT = 45_000  # the server's start-up plus the socket's reconnection back-off (at most ~7.5 s)


def banner(page: Page):
    return page.get_by_role('alert').filter(has_text='Connection lost')


def test_an_open_page_survives_a_server_restart(app: AppProcess, new_context: Callable[..., BrowserContext]) -> None:
    context = new_context(app)
    settings = context.new_page()
    set_up_organization(settings)
    settings.goto('/?tab=settings')
    team = context.new_page()
    team.goto('/?tab=team')
    expect(team.get_by_text('Team Members')).to_be_visible()
    subdomain = settings.get_by_label('Kustomer Organization Sub Domain')
    subdomain.fill('typed-while-down')
    team.get_by_role('textbox', name='Email').fill('new-hire@example.com')
    expect(button(settings, 'Save')).to_be_enabled()
    for page in (settings, team):
        expect(banner(page)).to_have_count(0)
        page.evaluate('window.cxtLoadedBeforeRestart = true')  # gone once the page has reloaded

    app.stop()
    for page in (settings, team):
        expect(banner(page)).to_be_visible()
        expect(banner(page)).to_contain_text('Nothing you change now is saved')
    expect(button(settings, 'Save')).to_be_disabled()
    expect(button(team, 'Send Invite')).to_be_disabled()
    button(settings, 'Save').click(force=True)  # pressed anyway: nothing waits to be sent later
    subdomain.press('Enter')

    app.start()
    for page in (settings, team):
        page.wait_for_function('() => window.cxtLoadedBeforeRestart === undefined', timeout=RELOAD_TIMEOUT)
        expect(banner(page)).to_have_count(0)
    expect(settings).to_have_url(re.compile(r'/\?tab=settings$'))
    expect(settings.get_by_role('tab', name='Dashboard Settings')).to_have_attribute('aria-selected', 'true')
    expect(button(settings, 'Save')).to_be_enabled()
    expect(settings.get_by_label('Kustomer Organization Sub Domain')).to_have_value('')  # nothing was saved
    expect(team).to_have_url(re.compile(r'/\?tab=team$'))
    expect(team.get_by_role('tab', name='User Management')).to_have_attribute('aria-selected', 'true')
    expect(team.get_by_text('Team Members')).to_be_visible()
    expect(team.get_by_text('new-hire@example.com')).to_have_count(0)

    # Saving works again on the reloaded page.
    settings.get_by_label('Kustomer Organization Sub Domain').fill('acme')
    button(settings, 'Save').click()
    expect(settings.get_by_text('Subdomains saved')).to_be_visible()
