"""Two real app processes on one PostgreSQL database: a browser session is one row that every process reads, so a
sign-out or a removal on one process ends the session on the other at once.

The sessions used to live in each process's own storage: signing out on A left the same browser signed in on B.
Chromium's cookies ignore the port, so one browser context visiting A (127.0.0.1:<a>) and B (127.0.0.1:<b>) sends
A's `cxt_session` cookie to B as well: the same browser, served by two processes.

Whether B also hears of the change at once (PostgreSQL NOTIFY sends its open pages to /login) does not matter here:
the tests hold either way, and one ends the row with a plain DELETE, which tells B nothing, to show that the next
action is refused by the shared row alone.
"""

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import create_engine, text
from sqlmodel import select

from models import Organization, Role
from services import config, db
from services.db import write_scope
from tests.browser.app_process import AppProcess
from tests.browser.helpers import (
    ADMIN,
    DESKTOP,
    REPO_ROOT,
    Person,
    button,
    member_row,
    remove_button,
    set_up_organization,
    sign_in,
)
from tests.factories import make_user
from tests.postgres_server import PostgresServer
from ui.session import COOKIE

pytestmark = pytest.mark.browser

CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--no-first-run']
SECRET_KEY = 'one-secret-for-both-processes-0123456789abcdef'  # both sign and check the same cookies
MEMBER = Person('Mia Member', 'mia@example.com')
AT_LOGIN = re.compile(r'/login(\?.*)?$')
TIMEOUT = 10_000
T = TypeVar('T')


@pytest.fixture(scope='module')
def browser() -> Iterator[Browser]:
    """Module-scoped sync Playwright, like tests/browser/conftest.py (a session-scoped one breaks later tests)."""
    if not CHROMIUM.exists():
        pytest.skip(f'no Chromium at {CHROMIUM}: install the `chromium` package (.ci/run does) to run browser tests')
    driver: Playwright
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A new empty database on the server, for this test only."""
    return postgres.create_database()


@pytest.fixture
def apps(
    database_url: str, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Processes A and B: the same database and secret, each its own data dir and port; booted side by side (the
    migrations take an advisory lock, so one migrates and the other waits)."""
    env = {'CXT_DATABASE_URL': database_url, 'CXT_SECRET_KEY': SECRET_KEY}
    pair = [AppProcess(REPO_ROOT, tmp_path_factory.mktemp(f'app-{name}'), env=env) for name in 'ab']
    try:
        for app in pair:
            app.spawn()
        for app in pair:
            app.wait_ready()
        yield pair[0], pair[1]
    finally:
        for app in pair:
            app.stop()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts the test opens (separate cookie jars, like separate people); all closed afterwards."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def open_context(contexts: list[BrowserContext], browser: Browser, app: AppProcess) -> BrowserContext:
    context = browser.new_context(base_url=app.url, viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT)
    contexts.append(context)
    return context


def count(database_url: str, query: str, **parameters: object) -> int:
    """One number from the shared database, read directly (not through either app)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(query), parameters).scalar_one())
    finally:
        engine.dispose()


def execute(database_url: str, statement: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def sessions_of(database_url: str, email: str) -> int:
    return count(
        database_url,
        'SELECT count(*) FROM browser_session JOIN "user" ON "user".id = browser_session.user_id '
        'WHERE "user".email = :email AND browser_session.token_hash IS NOT NULL',
        email=email,
    )


def assert_signed_in(page: Page, app: AppProcess, person: Person) -> None:
    page.goto(f'{app.url}/')
    expect(page.get_by_text(f'Signed in as {person.email}')).to_be_visible(timeout=TIMEOUT)
    assert page.url == f'{app.url}/', f'served by {app.url}'


def assert_sent_to_sign_in(page: Page, app: AppProcess) -> None:
    page.goto(f'{app.url}/')
    expect(page).to_have_url(AT_LOGIN, timeout=TIMEOUT)
    assert page.url.startswith(f'{app.url}/login'), f'served by {app.url}'
    expect(button(page, 'Sign in')).to_be_visible(timeout=TIMEOUT)


def signed_in_on_both(
    apps: tuple[AppProcess, AppProcess], browser: Browser, contexts: list[BrowserContext], database_url: str
) -> tuple[BrowserContext, Page, Page]:
    """One browser: the organization set up on A, then the dashboard open on B with the same cookie."""
    a, b = apps
    browser_context = open_context(contexts, browser, a)  # its cookie goes to A and to B
    on_a = browser_context.new_page()
    set_up_organization(on_a)
    assert [cookie.get('name') for cookie in browser_context.cookies(b.url)].count(COOKIE) == 1, 'B gets the cookie'
    on_b = browser_context.new_page()
    assert_signed_in(on_b, b, ADMIN)
    expect(button(on_b, 'Generate API Key')).to_be_visible()
    assert sessions_of(database_url, ADMIN.email) == 1
    return browser_context, on_a, on_b


def press_if_still_shown(page: Page, name: str) -> None:
    """Press `name` unless the page has been sent away already (by a notice from the other process)."""
    try:
        if button(page, name).is_visible():
            button(page, name).click(timeout=3_000)
    except PlaywrightError:
        pass  # the page went to /login between the look and the click: what follows checks where it is


def test_signing_out_on_one_process_signs_the_browser_out_on_the_other(
    apps: tuple[AppProcess, AppProcess], browser: Browser, contexts: list[BrowserContext], database_url: str
) -> None:
    a, b = apps
    browser_context, on_a, on_b = signed_in_on_both(apps, browser, contexts, database_url)

    button(on_a, 'Sign out').click()  # on A; B's page stays open meanwhile
    expect(on_a).to_have_url(AT_LOGIN, timeout=TIMEOUT)
    assert on_a.url.startswith(f'{a.url}/login')
    assert sessions_of(database_url, ADMIN.email) == 0

    # B's open page is sent to sign in: at once when B hears of the sign-out (PostgreSQL NOTIFY), at the latest at
    # its next action, which is refused. Either way nothing is created.
    press_if_still_shown(on_b, 'Generate API Key')
    expect(on_b).to_have_url(AT_LOGIN, timeout=TIMEOUT)
    assert on_b.url.startswith(f'{b.url}/login')
    assert count(database_url, 'SELECT count(*) FROM api_key') == 0

    # A new visit to B with the same browser (same cookie) is not signed in either.
    assert_sent_to_sign_in(browser_context.new_page(), b)


def test_an_open_page_on_the_other_process_is_refused_at_its_next_action(
    apps: tuple[AppProcess, AppProcess], browser: Browser, contexts: list[BrowserContext], database_url: str
) -> None:
    """The session row ends without any notice to B (as if B missed it): B's page still shows the dashboard, and
    its next action finds no session in the shared database."""
    a, b = apps
    browser_context, _, on_b = signed_in_on_both(apps, browser, contexts, database_url)
    generate = button(on_b, 'Generate API Key')
    expect(generate).to_be_visible()

    execute(database_url, 'DELETE FROM browser_session')  # a plain DELETE: no NOTIFY, nothing tells B

    generate.click()
    expect(on_b).to_have_url(AT_LOGIN, timeout=TIMEOUT)
    assert on_b.url.startswith(f'{b.url}/login')
    assert count(database_url, 'SELECT count(*) FROM api_key') == 0
    assert_sent_to_sign_in(browser_context.new_page(), a)


@pytest.fixture
def services_on(
    database_url: str, apps: tuple[AppProcess, AppProcess], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The services of this test process on the same database as A and B (already migrated by them)."""
    monkeypatch.setenv('CXT_DATABASE_URL', database_url)
    monkeypatch.setenv('CXT_SECRET_KEY', SECRET_KEY)
    settings = config.load_settings()
    config.configure(settings)
    engine = off_loop(lambda: db.init_database(settings.resolved_database_url))
    assert engine.dialect.name == 'postgresql'
    yield
    engine.dispose()


def off_loop(work: Callable[[], T]) -> T:
    """Run `work` on a worker thread: sync Playwright keeps an event loop on this one, where the services refuse to
    open a database session."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(work).result()


def add_member(person: Person) -> None:
    """A member of the (only) organization, with a known password, made through the services in this process."""

    def insert() -> None:
        with write_scope() as session:
            organization = session.exec(select(Organization)).one()
            make_user(
                session, organization=organization, role=Role.MEMBER, email=person.email, password=person.password
            )

    off_loop(insert)


def test_a_member_removed_on_one_process_is_signed_out_on_the_other(
    apps: tuple[AppProcess, AppProcess],
    services_on: None,
    browser: Browser,
    contexts: list[BrowserContext],
    database_url: str,
) -> None:
    a, b = apps
    admin_page = open_context(contexts, browser, a).new_page()
    set_up_organization(admin_page)  # signed in just now: removing needs no password dialog
    add_member(MEMBER)

    member_page = open_context(contexts, browser, b).new_page()  # the member's own browser, served by B
    sign_in(member_page, MEMBER)
    assert member_page.url == f'{b.url}/'
    assert sessions_of(database_url, MEMBER.email) == 1

    # The admin on A holds `Hold to Remove` on the member's row for the full 1.5 s.
    admin_page.reload()
    admin_page.get_by_role('tab', name='User Management').click()
    expect(member_row(admin_page, MEMBER.email)).to_be_visible(timeout=TIMEOUT)
    hold = remove_button(admin_page, MEMBER.email)  # in the member's `More actions` menu
    expect(hold).to_have_text('Hold to Remove')
    hold.hover()
    admin_page.mouse.down()
    time.sleep(2.0)
    admin_page.mouse.up()
    expect(admin_page.get_by_text(f'{MEMBER.email} removed')).to_be_visible(timeout=TIMEOUT)
    assert sessions_of(database_url, MEMBER.email) == 0

    # The member's page on B (sent to /login at once if B heard of the removal; if not, its next load does it):
    assert_sent_to_sign_in(member_page, b)
    # and the admin, who did nothing wrong, is still signed in on A.
    assert_signed_in(admin_page, a, ADMIN)
