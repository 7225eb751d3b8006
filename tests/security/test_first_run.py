"""First run on an address other machines can reach: whoever finds the port first cannot claim the instance.

`/setup` then asks for a one-time code that the process prints at start-up (as Jenkins does); on a loopback address
only the machine's own users can reach the page, and no code is asked. Checked against the real app (`main.py`) in a
real Chromium; the rule itself in `services/team/first_run.py`.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from services.errors import ValidationFailed
from services.team import first_run
from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, ORGANIZATION, REPO_ROOT, button

CHROMIUM = Path('/usr/bin/chromium')
CODE_LINE = re.compile(r'^Setup code\b.*: (\S+)$', re.MULTILINE)


@pytest.fixture(scope='module')
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f'no Chromium at {CHROMIUM}: install the `chromium` package (.ci/run does) to run browser tests')
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope='module')
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=['--no-sandbox', '--disable-gpu'])
    yield browser
    browser.close()


@pytest.fixture(scope='module')
def reachable_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """Listening on every interface (`CXT_HOST=0.0.0.0`), as on a server; the test still talks to it on loopback."""
    app = AppProcess(REPO_ROOT, tmp_path_factory.mktemp('reachable'), env={'CXT_HOST': '0.0.0.0'}).start()
    yield app
    app.stop()


@pytest.fixture(scope='module')
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    app = AppProcess(REPO_ROOT, tmp_path_factory.mktemp('local')).start()
    yield app
    app.stop()


@pytest.fixture
def page(browser: Browser, reachable_app: AppProcess) -> Iterator[Page]:
    context = browser.new_context(base_url=reachable_app.url)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.mark.browser
def test_on_a_reachable_address_setup_without_the_printed_code_creates_nothing(
    reachable_app: AppProcess, page: Page
) -> None:
    page.goto('/setup')
    code_field = page.get_by_label('Setup code')
    expect(code_field).to_be_visible()
    expect(page.get_by_text("the server's start-up output")).to_be_visible()
    fill_in_the_organization(page)
    for attempt, said in (('', 'Enter the setup code'), ('0' * 32, 'Wrong setup code')):
        code_field.fill(attempt)
        button(page, 'Create organization').click()
        expect(page.get_by_role('alert').filter(has_text=said)).to_be_visible()
        expect(code_field).to_have_attribute('aria-invalid', 'true')
        assert page.url.endswith('/setup')
        assert httpx.get(f'{reachable_app.url}/setup').status_code == 200, 'an account was created'


@pytest.mark.browser
def test_on_a_reachable_address_the_code_printed_at_start_up_sets_up_the_instance(
    reachable_app: AppProcess, page: Page
) -> None:
    printed = CODE_LINE.findall(reachable_app.log())
    assert len(printed) == 1, reachable_app.log()
    page.goto('/setup')
    fill_in_the_organization(page)
    page.get_by_label('Setup code').fill(f' {printed[0]} ')  # pasted with the spaces around it
    button(page, 'Create organization').click()
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible(timeout=15_000)
    assert httpx.get(f'{reachable_app.url}/setup').is_redirect


@pytest.mark.browser
def test_on_loopback_no_code_is_printed_or_asked(local_app: AppProcess, browser: Browser) -> None:
    assert not CODE_LINE.findall(local_app.log())
    context = browser.new_context(base_url=local_app.url)
    page = context.new_page()
    page.goto('/setup')
    expect(button(page, 'Create organization')).to_be_visible()
    expect(page.get_by_label('Organization name')).to_be_visible()
    expect(page.get_by_label('Setup code')).to_have_count(0)
    context.close()


@pytest.mark.parametrize('host', ['127.0.0.1', '127.0.1.1', '::1', '[::1]', 'localhost', 'LOCALHOST'])
def test_loopback_addresses_need_no_code(host: str) -> None:
    assert not first_run.setup_code_required(host)
    assert first_run.start_up_notice(host=host) is None
    first_run.check_setup_code(host=host, entered='')


@pytest.mark.parametrize(
    'host', ['0.0.0.0', '::', '192.168.1.20', '10.0.0.5', 'dashboard.example.com', 'localhost.evil']
)
def test_every_other_address_needs_the_code(host: str) -> None:
    assert first_run.setup_code_required(host)
    notice = first_run.start_up_notice(host=host)
    assert notice is not None and CODE_LINE.findall(notice) == [first_run.setup_code()]
    for attempt in ('', '   ', first_run.setup_code()[:-1], first_run.setup_code().upper(), 'é' * 32):
        with pytest.raises(ValidationFailed) as refused:
            first_run.check_setup_code(host=host, entered=attempt)
        assert refused.value.field == 'setup_code'
    first_run.check_setup_code(host=host, entered=f'\t{first_run.setup_code()}\n')


def test_the_code_is_one_per_process_and_unguessable() -> None:
    code = first_run.setup_code()
    assert first_run.setup_code() == code
    assert re.fullmatch(r'[0-9a-f]{32}', code)  # 128 random bits


def fill_in_the_organization(page: Page) -> None:
    page.get_by_label('Organization name').fill(ORGANIZATION)
    page.get_by_label('Your name').fill(ADMIN.name)
    page.get_by_label('Email').fill(ADMIN.email)
    page.get_by_label('Password').fill(ADMIN.password)
