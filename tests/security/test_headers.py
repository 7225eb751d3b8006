"""Security headers, against the real app (`main.py`) and a real Chromium.

What a browser is told about framing, scripts, sniffing, referrers, caching and HTTPS; that every page still works
under the policy it is served with (measured in Chromium: no violation, no console error); and that the policy stops
what it is there to stop: another site framing a page, a script slipped into a page.
"""

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from nicegui import __version__ as nicegui_version
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, expect, sync_playwright

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, REPO_ROOT, button, set_up_organization, sign_in

CHROMIUM = Path('/usr/bin/chromium')
SIGNED_OUT_PAGES = ['/login', '/forgot-password', '/invite/not-a-real-token']
SIGNED_IN_PAGES = ['/', '/help/sidekick']
INLINE_SCRIPT = re.compile(r'<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>', re.DOTALL | re.IGNORECASE)
STATIC_ASSET = f'/_nicegui/{nicegui_version}/static/nicegui.js'
# Collects what the page's policy refused, from the first line of every document the context loads.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(
  `${e.disposition} ${e.effectiveDirective}: ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
"""

pytestmark = pytest.mark.browser


@pytest.fixture(scope='module')
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    app = AppProcess(REPO_ROOT, tmp_path_factory.mktemp('app')).start()
    yield app
    app.stop()


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


@pytest.fixture
def context(browser: Browser, app: AppProcess) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=app.url)
    context.set_default_timeout(10_000)
    context.add_init_script(WATCH_VIOLATIONS)
    yield context
    context.close()


@pytest.fixture(scope='module')
def admin_cookies(app: AppProcess, browser: Browser) -> dict[str, str]:
    """The cookies of a browser where the admin is signed in (the organization set up first when still needed)."""
    context = browser.new_context(base_url=app.url)
    page = context.new_page()
    if httpx.get(f'{app.url}/setup').status_code == 200:
        set_up_organization(page)
    else:
        sign_in(page)
    cookies = {
        cookie['name']: cookie['value'] for cookie in context.cookies() if 'name' in cookie and 'value' in cookie
    }
    context.close()
    return cookies


class Watcher:
    """What a page reports while a person uses it: policy violations, console errors, uncaught errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: dict[str, list[str]] = {}
        self._step = 'start'
        page.on('console', lambda message: self._note(f'console: {message.text}') if message.type == 'error' else None)
        page.on('pageerror', lambda error: self._note(f'uncaught: {error}'))

    def _note(self, problem: str) -> None:
        self.problems.setdefault(self._step, []).append(problem)

    def step(self, name: str) -> None:
        """Collect the violations of the step before, then name the next one."""
        self.collect()
        self._step = name

    def collect(self) -> None:
        if self.page.is_closed():
            return
        for violation in self.page.evaluate('window.__cspViolations || []'):
            self._note(violation)
        self.page.evaluate('window.__cspViolations = []')


# --- the pages work under the policy they get ---------------------------------------------------------------


def test_every_page_works_in_chromium_under_the_policy_it_is_served_with(
    app: AppProcess, context: BrowserContext
) -> None:
    """The measurement that the policy is not too strict: every page, and what a person does on it, with zero
    violations and zero console errors (a refused `eval` would stop NiceGUI's page from rendering at all)."""
    page = context.new_page()
    watcher = Watcher(page)

    watcher.step('/setup')
    if httpx.get(f'{app.url}/setup').status_code == 200:
        page.goto('/setup')
        expect(button(page, 'Create organization')).to_be_visible()
        watcher.step('/setup: Create organization')
        set_up_organization(page)
    else:
        sign_in(page)

    watcher.step('/: Generate, Reveal and Rotate API Key, every tab')
    page.goto('/')
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()
    expect(button(page, 'Generate API Key').or_(button(page, 'Reveal API Key'))).to_be_visible()
    if button(page, 'Generate API Key').count():
        button(page, 'Generate API Key').click()  # shows the new key once
        button(page, 'Hide API Key').click()
    button(page, 'Reveal API Key').click()
    expect(button(page, 'Hide API Key')).to_be_visible()
    button(page, 'Rotate API Key').click()
    expect(page.get_by_role('dialog')).to_be_visible()
    page.keyboard.press('Escape')
    for tab in ('User Management', 'Activity', 'Dashboard Settings'):
        page.get_by_role('tab', name=tab).click()
        page.wait_for_timeout(300)

    watcher.step('/help/sidekick')
    page.goto('/help/sidekick')
    expect(page.get_by_role('link', name='CX Toolbox Dashboard')).to_be_visible()

    watcher.step('/: Sign out')
    page.goto('/')
    button(page, 'Sign out').click()
    page.wait_for_url('**/login**')

    watcher.step('/login')
    page.goto('/login')
    expect(button(page, 'Sign in')).to_be_visible()

    watcher.step('/forgot-password')
    page.goto('/forgot-password')  # no mail server here: the page says to ask an admin
    expect(page.get_by_role('heading', name='Reset your password')).to_be_visible()

    watcher.step('/invite/<unknown token>')
    page.goto('/invite/not-a-real-token')
    expect(page.get_by_text('This invitation link is not valid')).to_be_visible()
    page.wait_for_timeout(500)
    watcher.collect()

    assert watcher.problems == {}


def test_every_allowance_in_the_policy_is_one_the_pages_need(
    app: AppProcess, context: BrowserContext, admin_cookies: dict[str, str]
) -> None:
    """The measurement that the policy is not looser than it must be: take `'unsafe-eval'` out of `script-src`
    (NiceGUI's Vue templates and `run_javascript`) or `'unsafe-inline'` out of `style-src` (Quasar's style attributes,
    the Tailwind runtime), and the page reports violations. The page is served with the tighter policy report-only
    beside its own, so it keeps working and reports everything.

    Should NiceGUI stop needing one of them, this test fails: take it out of the policy then."""
    served = httpx.get(f'{app.url}/login').headers['content-security-policy']
    assert 'unsafe-inline' not in directive(served, 'script-src'), 'inline scripts are allowed by hash, not wholesale'
    for directive_name, allowance, refusal in (
        ('script-src', "'unsafe-eval'", 'report script-src: eval'),
        ('style-src', "'unsafe-inline'", 'report style-src-'),
    ):
        assert allowance in directive(served, directive_name)
        page = context.new_page()
        page.route('**/login', also_reporting_without(directive_name, allowance))
        page.goto('/login')
        expect(button(page, 'Sign in')).to_be_visible()
        page.wait_for_timeout(500)
        violations: list[str] = page.evaluate('window.__cspViolations')
        assert all(v.startswith(refusal) for v in violations), violations
        assert violations, f'without {allowance} in {directive_name} nothing was refused: tighten the policy'
        page.close()


def also_reporting_without(name: str, source: str) -> Callable[[Route], None]:
    """A route handler that serves the page with, beside its own policy, that policy without `source` in the
    directive `name` as report-only."""

    def handle(route: Route) -> None:
        response = route.fetch()
        # From this very response: the hash of NiceGUI's page script differs from page to page.
        policy = without(response.headers['content-security-policy'], name, source)
        route.fulfill(response=response, headers={**response.headers, 'content-security-policy-report-only': policy})

    return handle


# --- the attacks the policy stops -----------------------------------------------------------------------------


@pytest.mark.usefixtures('admin_cookies')  # set up: `/login` is the sign-in page, not a redirect to `/setup`
def test_another_site_cannot_frame_a_page(app: AppProcess, browser: Browser) -> None:
    """Clickjacking: a foreign page that puts the setup or sign-in page in a frame gets nothing rendered."""
    context = browser.new_context()
    page = context.new_page()
    page.set_content(f'<iframe src="{app.url}/login" width="800" height="600"></iframe>')
    page.wait_for_timeout(3_000)
    assert page.frame_locator('iframe').get_by_role('button', name='Sign in').count() == 0
    context.close()


@pytest.mark.usefixtures('admin_cookies')
def test_a_script_slipped_into_a_page_does_not_run(context: BrowserContext) -> None:
    """Markup that reaches the page's DOM (an unsanitized HTML path) cannot run: inline handlers, injected inline
    scripts and `javascript:` URLs are refused; only the page's own inline scripts (by hash) and its files run."""
    page = context.new_page()
    page.goto('/login')
    expect(button(page, 'Sign in')).to_be_visible()
    page.evaluate("""() => {
        window.ran = [];
        document.body.insertAdjacentHTML('beforeend', '<img src="/x" onerror="ran.push(\\'handler\\')">');
        const script = document.createElement('script');
        script.textContent = "ran.push('inline script')";
        document.body.append(script);
        const link = Object.assign(document.createElement('a'), {id: 'evil', textContent: 'x'});
        link.href = "javascript:void ran.push('url')";
        document.body.append(link);
    }""")
    page.locator('#evil').click()
    page.wait_for_timeout(1_000)
    assert page.evaluate('window.ran') == []
    refused = page.evaluate('window.__cspViolations')
    assert any('script-src' in violation for violation in refused), refused


# --- the headers themselves -----------------------------------------------------------------------------------


@pytest.mark.parametrize('path', ['/setup', *SIGNED_OUT_PAGES, *SIGNED_IN_PAGES])
def test_every_page_response_carries_the_security_headers(
    app: AppProcess, admin_cookies: dict[str, str], path: str
) -> None:
    """Pages, and the redirects between them (`/setup` once set up, a signed-out `/`), are all covered."""
    response = httpx.get(f'{app.url}{path}')
    assert_page_headers(response)
    if path in SIGNED_IN_PAGES:
        assert response.is_redirect
        response = httpx.get(f'{app.url}{path}', cookies=admin_cookies)
        assert response.status_code == 200
        assert_page_headers(response)


def test_the_policy_allows_exactly_the_pages_own_inline_scripts(app: AppProcess) -> None:
    """The script hashes are those of the page as sent, whether the body travels gzipped or not."""
    for encoding in ('gzip', 'identity'):
        response = httpx.get(f'{app.url}/login', headers={'Accept-Encoding': encoding})
        assert response.headers.get('content-encoding', 'identity') == encoding
        scripts = INLINE_SCRIPT.findall(response.text)
        assert len(scripts) >= 3  # the import map, NiceGUI's helper and the page's Vue app at least
        hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts}
        allowed = set(directive(response.headers['content-security-policy'], 'script-src').split())
        assert allowed == {"'self'", "'unsafe-eval'", *hashes}


def test_static_assets_stay_cacheable(app: AppProcess) -> None:
    response = httpx.get(f'{app.url}{STATIC_ASSET}')
    assert response.status_code == 200
    assert response.headers['x-content-type-options'] == 'nosniff'
    assert 'max-age=' in response.headers['cache-control']
    assert 'no-store' not in response.headers['cache-control']


@pytest.mark.parametrize('path', ['/api/health', '/api/v1/organization'])
def test_widget_api_answers_carry_nosniff_and_nothing_they_do_not_need(app: AppProcess, path: str) -> None:
    """JSON for widgets: no policy or cache header to build and send on the fast path."""
    response = httpx.get(f'{app.url}{path}', headers={'Authorization': 'Bearer cxt_not-a-key'})
    assert response.headers['content-type'] == 'application/json'
    assert response.headers['x-content-type-options'] == 'nosniff'
    for header in ('content-security-policy', 'referrer-policy', 'strict-transport-security'):
        assert header not in response.headers


def test_https_is_pinned_only_when_the_public_url_is_https(app: AppProcess, tmp_path: Path) -> None:
    assert 'strict-transport-security' not in httpx.get(f'{app.url}/login').headers
    behind_tls = AppProcess(REPO_ROOT, tmp_path, env={'CXT_PUBLIC_URL': 'https://dashboard.example.com'}).start()
    try:
        setup_page = httpx.get(f'{behind_tls.url}/setup')
        assert setup_page.status_code == 200
        assert_page_headers(setup_page, https=True)
        for path in ('/login', STATIC_ASSET):
            response = httpx.get(f'{behind_tls.url}{path}')
            assert response.headers['strict-transport-security'] == 'max-age=31536000'
    finally:
        behind_tls.stop()


def assert_page_headers(response: httpx.Response, *, https: bool = False) -> None:
    headers = response.headers
    policy = headers.get('content-security-policy', '')
    assert directive(policy, 'frame-ancestors') == "'none'", policy
    assert directive(policy, 'object-src') == "'none'", policy
    assert directive(policy, 'base-uri') == "'self'", policy
    assert directive(policy, 'default-src') == "'self'", policy
    assert "'unsafe-inline'" not in directive(policy, 'script-src'), policy
    assert headers.get('x-content-type-options') == 'nosniff'
    assert headers.get('referrer-policy') == 'same-origin'
    assert headers.get('cache-control') == 'no-store'
    assert headers.get('strict-transport-security') == ('max-age=31536000' if https else None)


def without(policy: str, name: str, source: str) -> str:
    """The policy with one source taken out of one directive."""
    parts = [part.strip() for part in policy.split(';') if part.strip()]
    return '; '.join(
        ' '.join(w for w in part.split() if w != source) if part.startswith(f'{name} ') else part for part in parts
    )


def directive(policy: str, name: str) -> str:
    """The sources of one directive of a policy ('' when it is missing)."""
    for part in policy.split(';'):
        words = part.split(maxsplit=1)
        if words and words[0] == name:
            return words[1].strip() if len(words) > 1 else ''
    return ''
