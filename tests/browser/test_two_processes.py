"""Two app processes on one PostgreSQL database: a change made on one shows on the other's open pages."""

import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import (
    KEY,
    ORGANIZATION,
    REPO_ROOT,
    Person,
    api_key_field,
    button,
    remove_button,
    set_up_organization,
    sign_in,
)
from tests.postgres_server import PostgresServer, find_bin_dir
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.browser

EVENTS = 10
LATENCY_LIMIT = 2.0  # seconds from the click on A to the row on B


@pytest.fixture(scope='module')
def two_apps(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[tuple[AppProcess, AppProcess]]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip('PostgreSQL is not installed (.ci/run installs it)')
    server = PostgresServer(bin_dir)
    server.start()
    env = {
        'CXT_DATABASE_URL': server.create_database(),
        'CXT_SECRET_KEY': secrets.token_urlsafe(32),
        'CXT_SMTP_HOST': smtp.host,
        'CXT_SMTP_PORT': str(smtp.port),
        'CXT_SMTP_SECURITY': 'none',
        'CXT_MAIL_FROM': 'dashboard@example.com',
    }
    apps = [AppProcess(REPO_ROOT, Path(tmp_path_factory.mktemp(name)), env=env) for name in ('a', 'b')]
    try:
        for app in apps:
            app.start()
        yield apps[0], apps[1]
    finally:
        for app in apps:
            app.stop()
        server.stop()


def _admin_page(new_context: Callable[..., BrowserContext], app: AppProcess) -> Page:
    """The first admin signed in on `app` (the organization is set up on first use)."""
    page = new_context(app).new_page()
    if httpx.get(f'{app.url}/setup', follow_redirects=False).status_code == 200:
        set_up_organization(page)
    else:
        sign_in(page)
    return page


def _team_tab(page: Page) -> None:
    page.get_by_role('tab', name='User Management').click()
    expect(page.get_by_text('Team Members')).to_be_visible()


def test_an_invitation_on_a_appears_on_b_open_team_tab(
    two_apps: tuple[AppProcess, AppProcess], new_context: Callable[..., BrowserContext], smtp: SmtpServer
) -> None:
    app_a, app_b = two_apps
    page_a = _admin_page(new_context, app_a)
    page_b = _admin_page(new_context, app_b)
    _team_tab(page_a)
    _team_tab(page_b)
    latencies = []
    for number in range(EVENTS):
        email = f'invitee{number}@example.com'
        page_a.get_by_label('Email').fill(email)
        started = time.monotonic()
        button(page_a, 'Send Invite').click()
        page_b.get_by_text(email, exact=True).wait_for(timeout=10_000)
        latencies.append(time.monotonic() - started)
        expect(page_a.get_by_text(f'Invitation sent to {email}')).to_be_visible()
    print(
        f'\ncross-process event latency over {EVENTS} invitations (click on A → row on B): '
        f'median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms'
    )
    assert max(latencies) < LATENCY_LIMIT, latencies


def test_a_member_removed_on_a_is_sent_to_sign_in_on_b(
    two_apps: tuple[AppProcess, AppProcess], new_context: Callable[..., BrowserContext], smtp: SmtpServer
) -> None:
    app_a, app_b = two_apps
    member = Person('Rita Remote', 'rita@example.com')
    admin_a = _admin_page(new_context, app_a)
    _team_tab(admin_a)
    already = len(smtp.messages)
    admin_a.get_by_label('Email').fill(member.email)
    button(admin_a, 'Send Invite').click()
    (link,) = set(smtp.wait_for(already + 1)[-1].links)
    member_b = new_context(app_b).new_page()  # the member accepts and works on the other process
    member_b.goto(urlsplit(link).path)
    expect(member_b.get_by_text(f'Join {ORGANIZATION}')).to_be_visible()
    member_b.get_by_label('Your name').fill(member.name)
    member_b.get_by_label('Password').fill(member.password)
    button(member_b, 'Accept invitation').click()
    expect(member_b.get_by_text(f'Signed in as {member.email}')).to_be_visible()

    hold = remove_button(admin_a, member.email)  # in the member's `More actions` menu
    hold.hover()
    admin_a.mouse.down()
    time.sleep(2.2)  # longer than the hold
    admin_a.mouse.up()
    expect(admin_a.get_by_text(f'{member.email} removed')).to_be_visible()
    removed = time.monotonic()
    expect(member_b).to_have_url(re.compile(r'/login\?removed='), timeout=5_000)
    expect(member_b.get_by_text(f'You were removed from {ORGANIZATION}')).to_be_visible()
    print(
        f'\nremoval on A → member page on B at /login: {(time.monotonic() - removed) * 1000:.0f} ms after A confirmed'
    )
    member_b.goto('/')
    expect(member_b.get_by_role('button', name='Sign in')).to_be_visible()


def test_a_key_rotated_on_a_is_refused_by_b_at_its_very_next_request(
    two_apps: tuple[AppProcess, AppProcess], new_context: Callable[..., BrowserContext]
) -> None:
    app_a, app_b = two_apps
    admin_a = _admin_page(new_context, app_a)
    expect(button(admin_a, 'Generate API Key').or_(button(admin_a, 'Rotate API Key'))).to_be_visible()
    if button(admin_a, 'Generate API Key').is_visible():  # the first test here to need a key makes it
        button(admin_a, 'Generate API Key').click()
    expect(button(admin_a, 'Rotate API Key')).to_be_visible()
    if button(admin_a, 'Reveal API Key').is_visible():  # a new key is shown at once; an older one masked
        button(admin_a, 'Reveal API Key').click()
    field = api_key_field(admin_a)
    expect(field).to_have_value(KEY)
    old_key = field.input_value()
    assert _organization_status(app_b, old_key) == 200  # B has just accepted (and may remember) the old key

    button(admin_a, 'Rotate API Key').click()
    dialog = admin_a.get_by_role('dialog')
    expect(dialog.get_by_role('radio', name='Immediately')).to_be_checked()
    button(dialog, 'Rotate').click()
    expect(admin_a.get_by_text('API key rotated')).to_be_visible()
    expect(field).not_to_have_value(old_key)
    expect(field).to_have_value(KEY)  # the new key, shown once
    new_key = field.input_value()

    assert _organization_status(app_b, old_key) == 401, "B's next request with the old key is refused"
    assert _organization_status(app_b, new_key) == 200
    assert _organization_status(app_a, old_key) == 401


def _organization_status(app: AppProcess, key: str) -> int:
    return httpx.get(
        f'{app.url}/api/v1/organization', headers={'Authorization': f'Bearer {key}'}, timeout=10
    ).status_code


def test_subdomains_saved_on_a_appear_on_b_open_dashboard(
    two_apps: tuple[AppProcess, AppProcess], new_context: Callable[..., BrowserContext]
) -> None:
    app_a, app_b = two_apps
    page_a = _admin_page(new_context, app_a)
    page_b = _admin_page(new_context, app_b)
    subdomain_b = page_b.get_by_label('Kustomer Organization Sub Domain')
    sandbox_b = page_b.get_by_label('Kustomer Sandbox Organization Sub Domain')
    expect(subdomain_b).to_have_value('')

    page_a.get_by_label('Kustomer Organization Sub Domain').fill('https://ACME.kustomerapp.com/app')
    page_a.get_by_label('Kustomer Sandbox Organization Sub Domain').fill('acme-sandbox')
    button(page_a, 'Save').click()
    expect(page_a.get_by_text('Subdomains saved')).to_be_visible()
    saved = time.monotonic()

    expect(subdomain_b).to_have_value('acme')  # B never reloaded: the other process told its open page
    print(f'\nsubdomains saved on A → shown on B: {(time.monotonic() - saved) * 1000:.0f} ms after A confirmed')
    expect(sandbox_b).to_have_value('acme-sandbox')
    expect(page_b.get_by_text('Subdomains saved')).to_have_count(0)  # B's person did nothing
