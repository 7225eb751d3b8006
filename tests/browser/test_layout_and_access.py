"""What a person sees on every page and tab, at phone (390 px) and desktop (1440 px) width: no sideways scrolling,
dialogs that fit, inputs with labels, and every action reachable with Tab and Enter."""

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, DESKTOP, KEY, Person, api_key_field, button, overflow, sign_in
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.browser

WIDTHS = {'phone': 390, 'desktop': 1440}
MEMBER = Person('Mo Member', 'mo@example.com')
PENDING = 'pending@example.com'
INTERACTIVE = 'button, a[href], input:not([type=hidden]), textarea, [role=tab], [role=combobox], [tabindex="0"]'


@dataclass(frozen=True)
class Tour:
    app: AppProcess
    invitation_link: str


@pytest.fixture(scope='module')
def tour(admin_app: AppProcess, browser: Browser, smtp: SmtpServer) -> Tour:
    """An organization with a key, subdomains, a member and a pending invitation: every list has something in it."""
    context = browser.new_context(base_url=admin_app.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page)
    button(page, 'Generate API Key').click()
    expect(api_key_field(page)).to_have_value(KEY)
    page.get_by_label('Kustomer Organization Sub Domain').fill('acme')
    button(page, 'Save').click()
    expect(page.get_by_text('Subdomains saved')).to_be_visible()
    page.get_by_role('tab', name='User Management').click()
    links = {}
    for email in (MEMBER.email, PENDING):
        already = len(smtp.messages)
        page.get_by_label('Email').fill(email)
        button(page, 'Send Invite').click()
        expect(page.get_by_text(f'Invitation sent to {email}')).to_be_visible()
        links[email] = smtp.wait_for(already + 1)[-1].links[0]
    member = browser.new_context(base_url=admin_app.url, viewport=DESKTOP).new_page()
    member.goto(links[MEMBER.email])
    member.get_by_label('Your name').fill(MEMBER.name)
    member.get_by_label('Password').fill(MEMBER.password)
    button(member, 'Accept invitation').click()
    expect(member.get_by_text(f'Signed in as {MEMBER.email}')).to_be_visible()
    member.context.close()
    context.close()
    return Tour(admin_app, links[PENDING])


def dialog_fits(page: Page) -> str | None:
    box = page.get_by_role('dialog').locator('.q-card').first.bounding_box()
    width = page.viewport_size['width'] if page.viewport_size else 0
    if box is None or box['x'] < 0 or box['x'] + box['width'] > width:
        return f'dialog box {box} does not fit in {width} px'
    return None


@pytest.mark.parametrize('width', WIDTHS.values(), ids=WIDTHS.keys())
def test_no_page_or_tab_scrolls_sideways(width: int, tour: Tour, new_context: Callable[..., BrowserContext]) -> None:
    viewport = {'width': width, 'height': 844 if width < 600 else 900}
    problems: dict[str, str | None] = {}
    visitor = new_context(tour.app, viewport=viewport).new_page()
    for path in (
        '/login',
        '/forgot-password',
        tour.invitation_link,
        '/invite/not-a-real-token',
        '/reset-password/not-a-real-token',
    ):
        visitor.goto(path)
        expect(visitor.locator('.q-card').first).to_be_visible()
        problems[path] = overflow(visitor)

    page = new_context(tour.app, viewport=viewport).new_page()
    sign_in(page)
    for tab, ready in (
        ('Dashboard Settings', 'Step 2: Configure Kustomer Subdomains'),
        ('User Management', 'Team Members'),
        ('Activity', 'Generated the API key'),
    ):
        page.get_by_role('tab', name=tab).click()
        expect(page.get_by_text(ready).first).to_be_visible()
        problems[tab] = overflow(page)
        if tab == 'Dashboard Settings':
            button(page, 'Reveal API Key').click()
            expect(api_key_field(page)).to_have_value(KEY)
            problems['key revealed'] = overflow(page)
            button(page, 'Rotate API Key').click()
            expect(page.get_by_role('dialog').get_by_text('Immediately')).to_be_visible()
            problems['rotate dialog'] = overflow(page) or dialog_fits(page)
            button(page.get_by_role('dialog'), 'Cancel').click()
            expect(page.get_by_role('dialog')).to_have_count(0)
    for topic in ('sidekick', 'task-kanban', 'troubleshooting'):
        page.goto(f'/help/{topic}')
        expect(page.get_by_text('Back to the dashboard')).to_be_visible()
        problems[f'/help/{topic}'] = overflow(page)
    assert {where: problem for where, problem in problems.items() if problem} == {}


def test_every_input_has_a_label_that_finds_it(tour: Tour, new_context: Callable[..., BrowserContext]) -> None:
    visitor = new_context(tour.app).new_page()
    expected = {
        '/login': ['Email', 'Password'],
        '/forgot-password': ['Email'],
        tour.invitation_link: ['Email', 'Your name', 'Password'],
    }
    for path, labels in expected.items():
        visitor.goto(path)
        for label in labels:
            expect(visitor.get_by_label(label, exact=True)).to_have_count(1)
        assert_all_inputs_named(visitor)

    page = new_context(tour.app).new_page()
    sign_in(page)
    for label in ('API Key', 'Kustomer Organization Sub Domain', 'Kustomer Sandbox Organization Sub Domain'):
        expect(page.get_by_label(label, exact=True)).to_have_count(1)
    assert_all_inputs_named(page)
    page.get_by_role('tab', name='User Management').click()
    expect(page.get_by_label('Email', exact=True)).to_have_count(1)
    expect(page.get_by_label('Role', exact=True)).to_have_count(1)
    assert_all_inputs_named(page)


def assert_all_inputs_named(page: Page) -> None:
    """Every field in the accessibility tree has a name (an unnamed one shows as `- textbox` or `- textbox: value`)."""
    expect(page.locator('.q-field').first).to_be_visible()
    tree = page.locator('body').aria_snapshot()
    unnamed = re.findall(r'^\s*- (?:textbox|combobox|searchbox|spinbutton|checkbox|radio)(?::.*)?$', tree, re.MULTILINE)
    assert unnamed == [], f'fields without a name on {page.url}: {unnamed}'


def focus_by_tab(page: Page, target: Locator, *, limit: int = 60, key: str = 'Tab') -> None:
    """Press Tab (or Shift+Tab) until `target` has the focus, the way a keyboard user gets there."""
    for _ in range(limit):
        if target.evaluate('e => e === document.activeElement || e.contains(document.activeElement)'):
            return
        page.keyboard.press(key)
    raise AssertionError(f'{target} was not reached within {limit} presses of {key}')


def test_signing_in_works_with_the_keyboard_alone(tour: Tour, new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(tour.app).new_page()
    page.goto('/login')
    expect(page.get_by_label('Email')).to_be_focused()  # the first field has the focus on arrival
    page.keyboard.type(ADMIN.email)
    page.keyboard.press('Tab')
    expect(page.get_by_label('Password')).to_be_focused()
    page.keyboard.type(ADMIN.password)
    focus_by_tab(page, button(page, 'Sign in'))
    page.keyboard.press('Enter')
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()


def test_every_dashboard_action_is_reachable_with_tab_and_works_with_enter(
    tour: Tour,
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(tour.app, permissions=['clipboard-read', 'clipboard-write']).new_page()
    sign_in(page)
    for tab in ('Dashboard Settings', 'User Management', 'Activity'):
        page.get_by_role('tab', name=tab).click()
        expect(page.get_by_role('tab', name=tab)).to_have_attribute('aria-selected', 'true')
        unreachable = tab_through(page)
        assert unreachable == [], f'{tab}: not reachable with Tab: {unreachable}'

    page.goto('/')
    focus_by_tab(page, button(page, 'Reveal API Key'))
    page.keyboard.press('Enter')
    expect(api_key_field(page)).to_have_value(KEY)
    expect(api_key_field(page)).to_be_focused()  # not lost with the Reveal button that went away
    focus_by_tab(page, button(page, 'Copy'))
    page.keyboard.press('Enter')
    expect(page.get_by_text('API key copied to the clipboard')).to_be_visible()
    # The tab list is one stop (the WAI-ARIA tabs pattern): Shift+Tab back to it, then the arrow keys.
    focus_by_tab(page, page.get_by_role('tab', name='Dashboard Settings'), key='Shift+Tab')
    page.keyboard.press('ArrowRight')
    expect(page.get_by_role('tab', name='User Management')).to_be_focused()
    page.keyboard.press('Enter')
    expect(page.get_by_role('tab', name='User Management')).to_have_attribute('aria-selected', 'true')
    focus_by_tab(page, page.get_by_label('Email', exact=True))
    page.keyboard.type('keyboard@example.com')
    focus_by_tab(page, button(page, 'Send Invite'))
    page.keyboard.press('Enter')
    expect(page.get_by_text('Invitation sent to keyboard@example.com')).to_be_visible()
    expect(page.get_by_text('keyboard@example.com', exact=True)).to_be_visible()

    # Dialogs take the keyboard too: Rotate's confirmation closes with Escape and nothing changes.
    page.get_by_role('tab', name='User Management').focus()
    page.keyboard.press('ArrowLeft')
    page.keyboard.press('Enter')
    focus_by_tab(page, button(page, 'Rotate API Key'))
    page.keyboard.press('Enter')
    expect(page.get_by_role('dialog').get_by_role('radio', name='Immediately')).to_be_checked()
    page.keyboard.press('Escape')
    expect(page.get_by_role('dialog')).to_have_count(0)


def tab_through(page: Page) -> list[str]:
    """Tab from the top of the page once round; returns the visible controls the focus never reached."""
    count = page.evaluate(
        """(selector) => {
        const controls = [...document.querySelectorAll(selector)].filter(e => {
            const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
            return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !e.disabled
                && !e.closest('[aria-hidden=true]') && e.tabIndex >= 0;
        });
        document.querySelectorAll('[data-tab-probe]').forEach(e => delete e.dataset.tabProbe);
        controls.forEach((e, i) => { e.dataset.tabProbe = String(i); });
        document.activeElement?.blur();
        return controls.length;
    }""",
        INTERACTIVE,
    )
    reached: set[str] = set()
    for _ in range(count * 2 + 10):
        page.keyboard.press('Tab')
        probe = page.evaluate("""() => {
            let e = document.activeElement;
            while (e && e.dataset && e.dataset.tabProbe === undefined) e = e.parentElement;
            return e && e.dataset ? e.dataset.tabProbe ?? null : null;
        }""")
        if probe is not None:
            reached.add(probe)
        if len(reached) == count:
            break
    return page.evaluate(
        """(reached) => [...document.querySelectorAll('[data-tab-probe]')]
        .filter(e => !reached.includes(e.dataset.tabProbe))
        .map(e => e.tagName.toLowerCase() + ' "' + (e.innerText || e.getAttribute('aria-label') || '').trim()
                  .slice(0, 40) + '"')""",
        sorted(reached),
    )


def test_signing_in_shows_progress_while_the_password_is_checked(
    tour: Tour,
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(tour.app).new_page()
    page.goto('/login')
    sign_in_button = button(page, 'Sign in')
    # Watch the button from inside the page: the busy state may last only a fraction of a second.
    sign_in_button.evaluate("""(b) => { window.busySeen = [];
        new MutationObserver(() => {
            if (b.querySelector('.q-spinner')) window.busySeen.push('spinner');
            if (b.disabled || b.getAttribute('aria-disabled') === 'true') window.busySeen.push('disabled');
        }).observe(b, {attributes: true, subtree: true, childList: true}); }""")
    page.get_by_label('Email').fill(ADMIN.email)
    page.get_by_label('Password').fill('a wrong password')
    sign_in_button.click()
    expect(page.get_by_text('Invalid email or password')).to_be_visible()
    assert set(page.evaluate('window.busySeen')) == {'spinner', 'disabled'}
    expect(sign_in_button).to_be_enabled()
