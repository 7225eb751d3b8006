"""axe-core (WCAG 2.0/2.1 A and AA) on every page and state, at a wide screen and a phone.

Each state is its own test, named `test_no_serious_axe_violations[<state>-<width>]`. A violation of impact serious
or critical fails it; minor and moderate ones are printed (run with `-s` to see them).

    uv run pytest tests/browser/test_accessibility.py -q          # every state
    uv run pytest tests/browser/test_accessibility.py -q -k login  # only the sign-in states

The module builds one organization through the UI (admin, member, invitations in every state, a locked email, a
reset link) and changes a few rows directly in the app's SQLite file for what the UI cannot make quickly (an expired
invitation, a password entry older than 10 minutes).
"""

import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect
from pyotp.totp import TOTP

from tests.browser.app_process import AppProcess
from tests.browser.conftest import CHROMIUM
from tests.browser.helpers import ADMIN, DESKTOP, KEY, ORGANIZATION, REPO_ROOT, Person, button, set_up_organization
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.browser

WIDTHS: dict[str, ViewportSize] = {'1440': {'width': 1440, 'height': 900}, '390': {'width': 390, 'height': 844}}
AXE_OPTIONS = {
    'runOnly': {'type': 'tag', 'values': ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
    'resultTypes': ['violations'],
}
BLOCKING = {'serious', 'critical'}
MEMBER = Person('Grace Hopper', 'grace@example.com')
PENDING, REVOKED, EXPIRED = 'linus@example.com', 'revoked@example.com', 'expired@example.com'
TWICE = 'twice@example.com'
LOCKED = 'locked-out@example.com'
LONG_AGO = '2000-01-01 00:00:00.000000'
SECRET_TEXT = re.compile(r'^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$')  # an authenticator secret as the page shows it

_axe = Axe()


@dataclass
class World:
    """The module's organization and everything the states need."""

    app: AppProcess
    admin: BrowserContext
    member: BrowserContext
    links: dict[str, str] = field(default_factory=dict)
    setup_violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quiet_app: AppProcess | None = None  # the same app without a mail server
    quiet_admin: BrowserContext | None = None

    def sql(self, statement: str, *parameters: object) -> None:
        """Change rows in the running app's database (SQLite in WAL mode: the app keeps working)."""
        with sqlite3.connect(self.app.data_dir / 'cxt.sqlite3', timeout=30) as connection:
            connection.execute(statement, parameters)


def settled(page: Page) -> None:
    """Wait until no CSS transition runs (Quasar fades dialogs, menus and notifications in: contrast measured
    halfway is wrong)."""
    expect(page.locator('[class*="q-transition--"][class*="-active"], .q-dialog__inner--animating')).to_have_count(0)
    page.evaluate('() => { window.cxtQuietSince = undefined; }')  # counted from now, not from an earlier check
    page.wait_for_function(QUIET_FOR_A_MOMENT)


# No CSS transition running for 200 ms on end: a notification the server sends just after an action starts fading in
# a moment later, and one check at a quiet instant would let axe measure it halfway.
QUIET_FOR_A_MOMENT = """() => {
  const moving = document.getAnimations().some(a => a instanceof CSSTransition && a.playState === 'running');
  window.cxtQuietSince = moving ? undefined : (window.cxtQuietSince ?? performance.now());
  return !moving && performance.now() - window.cxtQuietSince >= 200;
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    settled(page)
    # With a dialog open, the page behind its backdrop is left out (each of its states is checked without a dialog):
    # axe-core measures that dimmed text against the backdrop, which only native <dialog>s escape (axe-core #4441).
    dialog_open = page.locator('.q-dialog [role=dialog], [role=dialog].q-dialog').count() > 0
    context = {'exclude': [['.q-layout']]} if dialog_open else None
    return _axe.run(page, context=context, options=AXE_OPTIONS).response['violations']


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f'{violation["id"]} ({violation["impact"]}): {violation["help"]}')
        for node in violation['nodes'][:6]:
            summary = (node.get('failureSummary') or '').replace('\n', ' ')[:200]
            lines.append(f'    {node["target"]} {node["html"][:120]} — {summary}')
        if len(violation['nodes']) > 6:
            lines.append(f'    … and {len(violation["nodes"]) - 6} more')
    return '\n'.join(lines)


@pytest.fixture(scope='module')
def world(
    app: AppProcess, browser: Browser, smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if not CHROMIUM.exists():
        pytest.skip(f'no Chromium at {CHROMIUM}')
    # A second app without a mail server (its own pages and dialogs), booting while the first is set up.
    quiet_app = AppProcess(REPO_ROOT, tmp_path_factory.mktemp('quiet-app')).spawn()
    setup_violations = {}
    visitor = browser.new_context(base_url=app.url)
    page = visitor.new_page()
    for width, viewport in WIDTHS.items():  # the setup page exists only until the organization does
        page.set_viewport_size(viewport)
        page.goto('/setup')
        expect(button(page, 'Create organization')).to_be_visible()
        setup_violations[width] = axe_violations(page)
    page.set_viewport_size(DESKTOP)

    admin = browser.new_context(base_url=app.url, viewport=DESKTOP)
    admin.set_default_timeout(15_000)
    admin_page = admin.new_page()
    set_up_organization(admin_page, ADMIN, ORGANIZATION)
    button(admin_page, 'Generate API Key').click()
    expect(api_key(admin_page)).to_have_value(KEY)
    admin_page.get_by_label('Kustomer Organization Sub Domain').fill('acme')
    button(admin_page, 'Save').click()
    expect(admin_page.get_by_text('Subdomains saved')).to_be_visible()
    admin_page.get_by_role('tab', name='User Management').click()
    links = {}
    for email in (MEMBER.email, PENDING, REVOKED, EXPIRED, TWICE):
        before = len(smtp.messages)
        admin_page.get_by_label('Email').fill(email)
        button(admin_page, 'Send Invite').click()
        expect(admin_page.get_by_text(f'Invitation sent to {email}')).to_be_visible()
        links[email] = next(mail.links[0] for mail in smtp.wait_for(before + 1)[before:] if mail.recipients == [email])
    admin_page.close()

    member = browser.new_context(base_url=app.url, viewport=DESKTOP)
    member.set_default_timeout(15_000)
    member_page = member.new_page()
    member_page.goto(links[MEMBER.email])
    member_page.get_by_label('Your name').fill(MEMBER.name)
    member_page.get_by_label('Password').fill(MEMBER.password)
    button(member_page, 'Accept invitation').click()
    expect(member_page.get_by_text(f'Signed in as {MEMBER.email}')).to_be_visible(timeout=15_000)
    # The member turns on an authenticator app: signing in as them then asks for a code (its own page and states).
    member_page.goto('/security')
    button(member_page, 'Set up authenticator app').click()
    secret = member_page.get_by_text(SECRET_TEXT).inner_text().replace(' ', '')
    member_page.get_by_label('Authentication code').fill(TOTP(secret).now())
    button(member_page, 'Confirm').click()
    expect(member_page.get_by_role('heading', name='Save your recovery codes')).to_be_visible()
    button(member_page, 'Done').click()
    expect(member_page.get_by_text('Authenticator app: on since')).to_be_visible()
    member_page.close()

    # An email locked after 5 wrong passwords.
    page.goto('/login')
    page.get_by_label('Email').fill(LOCKED)
    for attempt in range(5):
        page.get_by_label('Password').fill(f'wrong password {attempt}')
        button(page, 'Sign in').click()
        expect(page.get_by_label('Password')).to_have_value('')
    # A password reset link (opening its page does not use it up).
    before = len(smtp.messages)
    page.goto('/forgot-password')
    page.get_by_label('Email').fill(MEMBER.email)
    button(page, 'Send reset link').click()
    links['reset'] = next(
        mail.links[0] for mail in smtp.wait_for(before + 1)[before:] if mail.recipients == [MEMBER.email]
    )
    visitor.close()

    quiet_admin = browser.new_context(base_url=quiet_app.wait_ready().url, viewport=DESKTOP)
    quiet_admin.set_default_timeout(15_000)
    quiet_page = quiet_admin.new_page()
    set_up_organization(quiet_page, ADMIN, ORGANIZATION)
    quiet_page.close()

    world = World(
        app=app,
        admin=admin,
        member=member,
        links=links,
        setup_violations=setup_violations,
        quiet_app=quiet_app,
        quiet_admin=quiet_admin,
    )
    world.sql('UPDATE invitation SET revoked_at = CURRENT_TIMESTAMP WHERE email = ?', REVOKED)
    world.sql('UPDATE invitation SET expires_at = ? WHERE email = ?', LONG_AGO, EXPIRED)
    yield world
    admin.close()
    member.close()
    quiet_admin.close()
    quiet_app.stop()


def api_key(page: Page) -> Locator:
    return page.get_by_role('textbox', name='API Key')


# --- The states: each brings a page to what a person sees, and returns what undoes it (or None) -----------------

Cleanup = Callable[[], None] | None


def _login(world: World, page: Page) -> Cleanup:
    page.goto('/login')
    expect(button(page, 'Sign in')).to_be_visible()
    return None


def _login_error(world: World, page: Page) -> Cleanup:
    page.goto('/login')
    page.get_by_label('Email').fill(f'nobody-{page.viewport_size["width"]}@example.com')  # type: ignore[index]
    page.get_by_label('Password').fill('not the password')
    button(page, 'Sign in').click()
    expect(page.get_by_text('Invalid email or password')).to_be_visible()
    return None


def _login_locked(world: World, page: Page) -> Cleanup:
    page.goto('/login')
    page.get_by_label('Email').fill(LOCKED)
    page.get_by_label('Password').fill('any password at all')
    button(page, 'Sign in').click()
    expect(page.get_by_text('Too many failed attempts.')).to_be_visible()
    return None


def _forgot_password(world: World, page: Page) -> Cleanup:
    page.goto('/forgot-password')
    expect(button(page, 'Send reset link')).to_be_visible()
    return None


def _forgot_password_answered(world: World, page: Page) -> Cleanup:
    page.goto('/forgot-password')
    page.get_by_label('Email').fill('someone@example.com')
    button(page, 'Send reset link').click()
    expect(page.get_by_text('If an account exists for someone@example.com')).to_be_visible()
    return None


def _reset_password(world: World, page: Page) -> Cleanup:
    page.goto(world.links['reset'])
    expect(button(page, 'Reset password')).to_be_visible()
    return None


def _reset_password_invalid(world: World, page: Page) -> Cleanup:
    page.goto('/reset-password/not-a-real-token')
    expect(page.get_by_text('Request a new link')).to_be_visible()
    return None


def _invite_accept(world: World, page: Page) -> Cleanup:
    page.goto(world.links[PENDING])
    expect(button(page, 'Accept invitation')).to_be_visible()
    return None


def _invite_page(path: Callable[[World], str], text: str) -> Callable[[World, Page], Cleanup]:
    def visit(world: World, page: Page) -> Cleanup:
        page.goto(path(world))
        expect(page.get_by_text(text)).to_be_visible()
        return None

    return visit


def _signed_out_help(world: World, page: Page) -> Cleanup:
    page.goto('/help/troubleshooting')
    expect(page.get_by_text('Nobody can sign in').first).to_be_visible()
    return None


def _dashboard(tab: str, ready: str) -> Callable[[World, Page], Cleanup]:
    def visit(world: World, page: Page) -> Cleanup:
        page.goto('/')
        page.get_by_role('tab', name=tab).click()
        expect(page.get_by_text(ready, exact=True).first).to_be_visible()
        return None

    return visit


def _revealed_key(world: World, page: Page) -> Cleanup:
    page.goto('/')
    button(page, 'Reveal API Key').click()
    expect(api_key(page)).to_have_value(KEY)
    return lambda: button(page, 'Hide API Key').click()


def _rotate_dialog(world: World, page: Page) -> Cleanup:
    page.goto('/')
    button(page, 'Rotate API Key').click()
    expect(page.get_by_role('dialog')).to_be_visible()
    expect(button(page, 'Rotate')).to_be_visible()
    return lambda: button(page, 'Cancel').click()


def _key_in_grace(world: World, page: Page) -> Cleanup:
    page.goto('/')
    button(page, 'Rotate API Key').click()
    page.get_by_role('dialog').get_by_text('In 1 hour').click()
    button(page, 'Rotate').click()
    expect(page.get_by_text('keeps working until').first).to_be_visible()
    expect(page.locator('.q-notification')).to_have_count(0, timeout=15_000)
    return None


def _password_dialog(world: World, page: Page) -> Cleanup:
    world.sql(
        'UPDATE browser_session SET password_confirmed_at = ? WHERE user_id = (SELECT id FROM user WHERE email = ?)',
        LONG_AGO,
        ADMIN.email,
    )
    page.goto('/')
    button(page, 'Reveal API Key').click()
    dialog = page.get_by_role('dialog')
    expect(dialog.get_by_role('textbox', name='Password')).to_be_visible()

    def confirm() -> None:
        dialog.get_by_role('textbox', name='Password').fill(ADMIN.password)
        button(dialog, 'Confirm').click()
        expect(api_key(page)).to_have_value(KEY)
        button(page, 'Hide API Key').click()

    return confirm


def _role_menu(world: World, page: Page) -> Cleanup:
    page.goto('/')
    page.get_by_role('tab', name='User Management').click()
    page.get_by_label('Role', exact=True).click()
    expect(page.get_by_role('listbox').get_by_role('option', name='Admin')).to_be_visible()
    return lambda: page.keyboard.press('Escape')


def _page(path: str, ready: str) -> Callable[[World, Page], Cleanup]:
    def visit(world: World, page: Page) -> Cleanup:
        page.goto(path)
        expect(page.get_by_text(ready).first).to_be_visible()
        return None

    return visit


def _open_team(page: Page) -> None:
    page.goto('/')
    page.get_by_role('tab', name='User Management').click()
    expect(page.get_by_text(MEMBER.email, exact=True).last).to_be_visible()


def _member_row(page: Page) -> Locator:
    return page.get_by_role('row').filter(has=page.get_by_text(MEMBER.email, exact=True))


def _row_menu(world: World, page: Page) -> Cleanup:
    _open_team(page)
    _member_row(page).get_by_role('button', name='More actions').click()
    expect(page.get_by_role('menu').get_by_role('menuitem', name='Hold to Remove')).to_be_visible()
    return lambda: page.keyboard.press('Escape')


def _role_dialog(world: World, page: Page) -> Cleanup:
    _open_team(page)
    page.get_by_role('combobox', name=f'Role for {MEMBER.name}').select_option('admin')
    dialog = page.get_by_role('dialog', name=f'Make {MEMBER.name} an admin?')
    expect(dialog).to_be_visible()
    return lambda: button(dialog, 'Cancel').click()


def _revoke_dialog(world: World, page: Page) -> Cleanup:
    page.goto('/')
    expect(button(page, 'Rotate API Key')).to_be_visible()
    if button(page, 'Revoke old key now').count() == 0:
        button(page, 'Rotate API Key').click()
        page.get_by_role('dialog').get_by_text('In 1 hour').click()
        button(page, 'Rotate').click()
    button(page, 'Revoke old key now').first.click()
    dialog = page.get_by_role('dialog', name='Revoke the old key now?')
    expect(dialog.get_by_text(re.compile(r'Old key: \d+ requests? in the last hour'))).to_be_visible()
    return lambda: button(dialog, 'Cancel').click()


def _team_sorted(world: World, page: Page) -> Cleanup:
    """Sorted by name: on a wide screen by its heading, on a phone with the sort control (its list open)."""
    _open_team(page)
    if page.viewport_size and page.viewport_size['width'] < 600:
        page.get_by_role('combobox', name='Sort by').click()
        expect(page.get_by_role('option', name='Name (Z to A)')).to_be_visible()
        return lambda: page.keyboard.press('Escape')
    heading = page.get_by_role('columnheader', name='Name').last
    heading.get_by_role('button', name='Name').click()
    expect(heading).to_have_attribute('aria-sort', 'ascending')
    return None


def _reset_link_dialog(world: World, page: Page) -> Cleanup:
    _row_menu(world, page)
    page.get_by_role('menu').get_by_role('menuitem', name='Copy reset link').click()
    dialog = page.get_by_role('dialog')
    expect(dialog.get_by_text('It works once, for 1 hour')).to_be_visible()
    return lambda: button(dialog, 'Close').click()


def _invitation_link_dialog(world: World, page: Page) -> Cleanup:
    page.goto('/')
    page.get_by_role('tab', name='User Management').click()
    page.get_by_role('textbox', name='Email').fill(f'quiet-{page.viewport_size["width"]}@example.com')  # type: ignore[index]
    button(page, 'Send Invite').click()
    dialog = page.get_by_role('dialog')
    expect(dialog.get_by_text('No mail server is configured')).to_be_visible()
    return lambda: button(dialog, 'Close').click()


def _code_step(world: World, page: Page) -> Cleanup:
    page.goto('/login')
    page.get_by_label('Email').fill(MEMBER.email)
    page.get_by_label('Password', exact=True).fill(MEMBER.password)
    button(page, 'Sign in').click()
    expect(page.get_by_label('Authentication code')).to_be_visible()
    return None


def _code_step_error(world: World, page: Page) -> Cleanup:
    _code_step(world, page)
    page.get_by_label('Authentication code').fill('12345')  # too short: refused without using up an attempt's code
    button(page, 'Verify').click()
    expect(page.get_by_role('alert').first).to_be_visible()
    return None


def _authenticator_set_up(world: World, page: Page) -> Cleanup:
    page.goto('/security')
    button(page, 'Set up authenticator app').click()
    expect(page.get_by_role('img', name='QR code to scan with your authenticator app')).to_be_visible()
    return None


def _sign_out_everywhere_dialog(world: World, page: Page) -> Cleanup:
    page.goto('/security')
    button(page, 'Sign out everywhere').click()
    dialog = page.get_by_role('dialog', name='Sign out everywhere?')
    expect(dialog).to_be_visible()
    return lambda: button(dialog, 'Cancel').click()


def _connection_lost(world: World, page: Page) -> Cleanup:
    """The page's socket closed for good (as when the server is down): the `Connection lost` banner, saving off."""
    page.goto('/')
    expect(button(page, 'Reveal API Key')).to_be_visible()
    expect(page.locator('.nicegui-echart:not([role])')).to_have_count(0)  # the chart drawn, as in `admin-settings`
    page.evaluate('() => { window.socket.io.reconnection(false); window.socket.io.engine.close(); }')
    expect(page.get_by_role('alert').filter(has_text='Connection lost')).to_be_visible()
    expect(button(page, 'Save')).to_be_disabled()
    return None


VISITOR, ADMIN_STATE, MEMBER_STATE = 'visitor', 'admin', 'member'
QUIET_VISITOR, QUIET_ADMIN = 'visitor without mail', 'admin without mail'
STATES: dict[str, tuple[str, Callable[[World, Page], Cleanup]]] = {
    'login': (VISITOR, _login),
    'login-error': (VISITOR, _login_error),
    'login-locked': (VISITOR, _login_locked),
    'forgot-password': (VISITOR, _forgot_password),
    'forgot-password-answered': (VISITOR, _forgot_password_answered),
    'reset-password': (VISITOR, _reset_password),
    'reset-password-invalid': (VISITOR, _reset_password_invalid),
    'invite-accept': (VISITOR, _invite_accept),
    'invite-not-valid': (VISITOR, _invite_page(lambda w: '/invite/not-a-real-token', 'This invitation link is not')),
    'invite-revoked': (VISITOR, _invite_page(lambda w: w.links[REVOKED], 'This invitation has been revoked')),
    'invite-expired': (VISITOR, _invite_page(lambda w: w.links[EXPIRED], 'This invitation has expired')),
    'invite-used': (VISITOR, _invite_page(lambda w: w.links[MEMBER.email], 'This invitation has already been used')),
    'help-troubleshooting-signed-out': (VISITOR, _signed_out_help),
    'admin-settings': (ADMIN_STATE, _dashboard('Dashboard Settings', 'Step 1: Generate API Key')),
    'admin-revealed-key': (ADMIN_STATE, _revealed_key),
    'admin-rotate-dialog': (ADMIN_STATE, _rotate_dialog),
    'admin-password-dialog': (ADMIN_STATE, _password_dialog),
    'admin-key-in-grace': (ADMIN_STATE, _key_in_grace),
    'admin-user-management': (ADMIN_STATE, _dashboard('User Management', 'Team Members')),
    'admin-role-menu-open': (ADMIN_STATE, _role_menu),
    'admin-activity': (ADMIN_STATE, _dashboard('Activity', 'Saved the subdomains')),
    'member-settings': (MEMBER_STATE, _dashboard('Dashboard Settings', 'Step 1: Generate API Key')),
    'member-user-management': (MEMBER_STATE, _dashboard('User Management', 'Team Members')),
    'help-sidekick': (ADMIN_STATE, _page('/help/sidekick', 'Sidekick runs inside Kustomer')),
    'help-task-kanban': (ADMIN_STATE, _page('/help/task-kanban', 'Task Kanban shows')),
    'help-troubleshooting': (ADMIN_STATE, _page('/help/troubleshooting', 'Nobody can sign in')),
    'security': (ADMIN_STATE, _page('/security', 'Change password')),
    'security-authenticator-set-up': (ADMIN_STATE, _authenticator_set_up),
    'member-security-two-factor-on': (MEMBER_STATE, _page('/security', 'Authenticator app: on since')),
    'login-code': (VISITOR, _code_step),
    'login-code-error': (VISITOR, _code_step_error),
    'admin-reset-link-dialog': (ADMIN_STATE, _reset_link_dialog),
    'admin-row-menu': (ADMIN_STATE, _row_menu),
    'admin-role-dialog': (ADMIN_STATE, _role_dialog),
    'admin-revoke-dialog': (ADMIN_STATE, _revoke_dialog),
    'admin-team-sorted': (ADMIN_STATE, _team_sorted),
    'no-mail-forgot-password': (QUIET_VISITOR, _page('/forgot-password', 'Ask an admin of your organization')),
    'no-mail-invitation-link-dialog': (QUIET_ADMIN, _invitation_link_dialog),
    'no-mail-user-management': (QUIET_ADMIN, _dashboard('User Management', 'Team Members')),
    'security-sign-out-everywhere-dialog': (ADMIN_STATE, _sign_out_everywhere_dialog),
    'admin-connection-lost': (ADMIN_STATE, _connection_lost),
    'admin-organization': (ADMIN_STATE, _page('/organization', 'Sign-in rules')),
    'not-found': (VISITOR, _page('/no-such-page', 'Page not found')),
    'admin-not-found': (ADMIN_STATE, _page('/help/no-such-topic', 'Page not found')),
}


def check(state: str, width: str, violations: list[dict[str, Any]]) -> None:
    blocking = [violation for violation in violations if violation['impact'] in BLOCKING]
    others = [violation for violation in violations if violation['impact'] not in BLOCKING]
    if others:
        print(f'\n[{state} at {width} px] minor/moderate axe findings:\n{describe(others)}')
    assert not blocking, f'{state} at {width} px:\n{describe(blocking)}'


@pytest.mark.parametrize('width', WIDTHS)
def test_no_serious_axe_violations_on_setup(width: str, world: World) -> None:
    check('setup', width, world.setup_violations[width])


@pytest.mark.parametrize('width', WIDTHS)
@pytest.mark.parametrize('state', STATES)
def test_no_serious_axe_violations(
    state: str, width: str, world: World, new_context: Callable[..., BrowserContext]
) -> None:
    who, visit = STATES[state]
    if who in {VISITOR, QUIET_VISITOR}:
        page = new_context(world.app if who == VISITOR else world.quiet_app, viewport=WIDTHS[width]).new_page()
    else:
        context = {ADMIN_STATE: world.admin, MEMBER_STATE: world.member, QUIET_ADMIN: world.quiet_admin}[who]
        assert context is not None
        page = context.new_page()
        page.set_viewport_size(WIDTHS[width])
    try:
        cleanup = visit(world, page)
        violations = axe_violations(page)
        h1s = page.locator('h1').count()
        if cleanup is not None:
            cleanup()
    finally:
        if who not in {VISITOR, QUIET_VISITOR}:
            page.close()
    check(state, width, violations)
    assert h1s == 1, f'{state} at {width} px: {h1s} h1 elements (one per page)'


# --- What axe-core cannot tell: keyboard focus and announcements ----------------------------------------------------

FOCUS_STYLE = """() => {
  const focused = document.activeElement;
  // A text field's ring is drawn around the whole field, not the bare <input> inside it.
  const ringed = focused.closest('.q-field') ? focused.closest('.q-field').querySelector('.q-field__control') : focused;
  const style = getComputedStyle(ringed);
  // The ring lies outside the element (offset) or just inside it (negative offset): the colour it is seen against.
  let behind = Number.parseFloat(style.outlineOffset) < 0 ? ringed : ringed.parentElement;
  let background = 'rgb(255, 255, 255)';
  for (; behind; behind = behind.parentElement) {
    const color = getComputedStyle(behind).backgroundColor;
    if (color !== 'transparent' && !color.startsWith('rgba(0, 0, 0, 0)')) { background = color; break; }
  }
  return {
    what: focused.tagName.toLowerCase() + ' ' + (focused.getAttribute('aria-label') || focused.innerText || '').trim(),
    style: style.outlineStyle, width: Number.parseFloat(style.outlineWidth), color: style.outlineColor, background,
  };
}"""


def _rgb(css: str) -> tuple[float, float, float]:
    red, green, blue = (float(part) for part in css[css.index('(') + 1 : css.index(')')].split(',')[:3])
    return red, green, blue


def contrast(first: str, second: str) -> float:
    def luminance(color: str) -> float:
        channels = [c / 255 for c in _rgb(color)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def assert_focus_rings(page: Page, presses: int) -> list[str]:
    """Tab through `presses` controls; each shows a ring of at least 2 px and 3:1 against what is behind it."""
    seen = []
    for _ in range(presses):
        page.keyboard.press('Tab')
        ring = page.evaluate(FOCUS_STYLE)
        if ring['what'].startswith('body'):
            continue
        seen.append(ring['what'])
        assert ring['style'] not in {'none', 'hidden'} and ring['width'] >= 2, f'no focus ring on {ring}'
        assert contrast(ring['color'], ring['background']) >= 3, f'focus ring too faint on {ring}'
    return seen


@pytest.mark.parametrize('width', WIDTHS)
def test_every_control_shows_a_focus_ring(width: str, world: World, new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(world.app, viewport=WIDTHS[width]).new_page()
    page.goto('/login')
    expect(button(page, 'Sign in')).to_be_visible()
    seen = assert_focus_rings(page, 7)
    assert any('show password' in what.lower() for what in seen) and any('Sign in' in what for what in seen), seen

    admin = world.admin.new_page()
    try:
        admin.set_viewport_size(WIDTHS[width])
        admin.goto('/')
        expect(button(admin, 'Reveal API Key')).to_be_visible()  # the key card is built: it has controls to reach
        seen = assert_focus_rings(admin, 16)
        assert any('Sign out' in what for what in seen) and any('Reveal API Key' in what for what in seen), seen
    finally:
        admin.close()


def test_the_password_toggle_is_a_named_button_reached_by_tab(
    world: World, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(world.app).new_page()
    page.goto('/login')
    password = page.get_by_role('textbox', name='Password')
    password.fill('what I typed')
    password.press('Tab')
    toggle = page.get_by_role('button', name='Show password')
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute('aria-pressed', 'false')
    expect(password).to_have_attribute('type', 'password')

    page.keyboard.press('Enter')
    expect(page.get_by_role('button', name='Hide password')).to_be_focused()
    expect(page.get_by_role('button', name='Hide password')).to_have_attribute('aria-pressed', 'true')
    expect(password).to_have_attribute('type', 'text')
    expect(password).to_have_value('what I typed')

    page.keyboard.press('Space')
    expect(page.get_by_role('button', name='Show password')).to_be_focused()
    expect(password).to_have_attribute('type', 'password')


def test_closing_a_dialog_gives_the_focus_back_to_its_opener(world: World) -> None:
    page = world.admin.new_page()
    try:
        page.goto('/')
        rotate = button(page, 'Rotate API Key')
        rotate.focus()
        page.keyboard.press('Enter')
        dialog = page.get_by_role('dialog', name='Rotate API Key?')
        expect(dialog).to_be_visible()
        page.keyboard.press('Escape')
        expect(dialog).to_have_count(0)
        expect(rotate).to_be_focused()

        world.sql(
            'UPDATE browser_session SET password_confirmed_at = ? '
            'WHERE user_id = (SELECT id FROM user WHERE email = ?)',
            LONG_AGO,
            ADMIN.email,
        )
        reveal = button(page, 'Reveal API Key')
        reveal.focus()
        page.keyboard.press('Enter')
        dialog = page.get_by_role('dialog', name='Confirm your password to reveal the API key')
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role('textbox', name='Password')).to_be_focused()
        button(dialog, 'Cancel').click()
        expect(dialog).to_have_count(0)
        expect(reveal).to_be_focused()

        # Confirmed this time: the key shows, and the focus is on it (the Reveal button is gone).
        reveal.press('Enter')
        dialog.get_by_role('textbox', name='Password').fill(ADMIN.password)
        dialog.get_by_role('textbox', name='Password').press('Enter')
        expect(dialog).to_have_count(0)
        expect(api_key(page)).to_have_value(KEY)
        expect(api_key(page)).to_be_focused()
        button(page, 'Hide API Key').click()
    finally:
        page.close()


def test_sign_in_errors_the_lockout_and_the_reset_answer_are_announced(
    world: World, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(world.app).new_page()
    page.goto('/login')
    page.get_by_role('textbox', name='Email').fill('announced@example.com')
    page.get_by_role('textbox', name='Password').fill('not the password')
    button(page, 'Sign in').click()
    expect(page.get_by_role('alert').filter(has_text='Invalid email or password')).to_be_visible()
    expect(page.get_by_role('textbox', name='Password')).to_be_focused()  # ready for the next try

    page.get_by_role('textbox', name='Email').fill(LOCKED)
    page.get_by_role('textbox', name='Password').fill('any password at all')
    button(page, 'Sign in').click()
    expect(page.get_by_role('alert').filter(has_text='Too many failed attempts.')).to_be_visible()

    page.goto('/forgot-password')
    page.get_by_role('textbox', name='Email').fill('someone@example.com')
    button(page, 'Send reset link').click()
    expect(page.get_by_role('alert').filter(has_text='If an account exists for someone@example.com')).to_be_visible()

    # A form's invalid field gets the focus, marked invalid, its message announced.
    page.goto(world.links[PENDING])
    page.get_by_label('Your name').fill('Linus')
    page.get_by_role('textbox', name='Password').fill('short')
    button(page, 'Accept invitation').click()
    expect(page.get_by_role('alert').filter(has_text='at least 10 characters')).to_be_visible()
    expect(page.get_by_role('textbox', name='Password')).to_be_focused()
    expect(page.get_by_role('textbox', name='Password')).to_have_attribute('aria-invalid', 'true')


def test_error_notifications_stay_until_dismissed(world: World, new_context: Callable[..., BrowserContext]) -> None:
    """An invitation accepted in one tab, then again in another: the error stays; a success notice goes by itself."""
    first, second = (new_context(world.app).new_page() for _ in range(2))
    for page in (first, second):
        page.clock.install()  # the test moves the page's clock on instead of waiting
        page.goto(world.links[TWICE])
        page.get_by_label('Your name').fill('Twice Tried')
        page.get_by_role('textbox', name='Password').fill('correct horse battery staple')
    button(first, 'Accept invitation').click()
    expect(first.get_by_text('Signed in as twice@example.com')).to_be_visible(timeout=15_000)
    button(second, 'Accept invitation').click()
    error = second.get_by_role('alert').filter(has_text='This invitation has already been used')
    expect(error).to_be_visible()
    second.clock.fast_forward('01:00')  # a minute: far past Quasar's 5 s for notifications
    expect(error).to_be_visible()
    button(error, 'OK').click()
    expect(error).to_have_count(0)

    button(first, 'Sign out').click()
    expect(button(first, 'Sign in')).to_be_visible()
