"""Two app processes on one PostgreSQL database: subdomains saved on one show on the other's open dashboards."""

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT, button, set_up_organization, sign_in
from tests.postgres_server import PostgresServer, find_bin_dir

pytestmark = pytest.mark.browser


@pytest.fixture(scope='module')
def two_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppProcess, AppProcess]]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip('PostgreSQL is not installed (.ci/run installs it)')
    server = PostgresServer(bin_dir)
    server.start()
    env = {'CXT_DATABASE_URL': server.create_database(), 'CXT_SECRET_KEY': secrets.token_urlsafe(32)}
    apps = [AppProcess(REPO_ROOT, Path(tmp_path_factory.mktemp(name)), env=env) for name in ('a', 'b')]
    try:
        for app in apps:
            app.start()
        yield apps[0], apps[1]
    finally:
        for app in apps:
            app.stop()
        server.stop()


def admin_page(new_context: Callable[..., BrowserContext], app: AppProcess) -> Page:
    """The first admin signed in on `app` (the organization is set up on first use)."""
    page = new_context(app).new_page()
    if httpx.get(f'{app.url}/setup', follow_redirects=False).status_code == 200:
        set_up_organization(page)
    else:
        sign_in(page)
    return page


def test_subdomains_saved_on_a_appear_on_b_open_dashboard(
    two_apps: tuple[AppProcess, AppProcess], new_context: Callable[..., BrowserContext]
) -> None:
    app_a, app_b = two_apps
    page_a = admin_page(new_context, app_a)
    page_b = admin_page(new_context, app_b)
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
