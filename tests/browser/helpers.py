"""What a person does in the browser, in a few words each."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page, ViewportSize, expect
from playwright.sync_api import Error as PlaywrightError

REPO_ROOT = Path(__file__).resolve().parents[2]
# Resolved at import, before the autouse fixture in tests/conftest.py moves each test into its tmp_path.
ARTIFACTS = Path(os.environ.get('CXT_TEST_ARTIFACTS') or REPO_ROOT / 'test-artifacts').resolve()
MASKED_KEY = re.compile(r'^cxt_•+[A-Za-z0-9]{4}$')
KEY = re.compile(r'^cxt_[A-Za-z0-9]{40}$')
DESKTOP: ViewportSize = {'width': 1280, 'height': 900}
PHONE: ViewportSize = {'width': 390, 'height': 844}


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    password: str = 'correct horse battery staple'


ADMIN = Person('Ada Admin', 'ada@example.com')
ORGANIZATION = 'Acme Support'
STRIPE_PRICE_ID = 'price_test_team_monthly'


def set_up_organization(page: Page, admin: Person = ADMIN, organization: str = ORGANIZATION) -> None:
    """Fill the first-run setup page and wait until the new admin sees the dashboard."""
    page.goto('/setup')
    page.get_by_label('Organization name').fill(organization)
    page.get_by_label('Your name').fill(admin.name)
    page.get_by_label('Email').fill(admin.email)
    page.get_by_label('Password').fill(admin.password)
    page.get_by_role('button', name='Create organization').click()
    expect(page.get_by_text(f'Signed in as {admin.email}')).to_be_visible(timeout=15_000)


def sign_in(page: Page, person: Person = ADMIN, *, path: str = '/login') -> None:
    page.goto(path)
    page.get_by_label('Email').fill(person.email)
    page.get_by_label('Password').fill(person.password)
    page.get_by_role('button', name='Sign in').click()
    expect(page.get_by_text(f'Signed in as {person.email}')).to_be_visible(timeout=15_000)


def api_key_field(page: Page) -> Locator:
    return page.get_by_label('API Key', exact=True)


def button(page: Page | Locator, name: str) -> Locator:
    return page.get_by_role('button', name=name, exact=True)


def overflow(page: Page) -> str | None:
    """None when nothing scrolls sideways; otherwise the widths and the elements that stick out."""
    scroll_width, inner_width = page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]')
    if scroll_width <= inner_width:
        return None
    culprits = page.evaluate(
        """(width) => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > width + 0.5)
        .slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + [...e.classList].slice(0, 4).join('.')
                           + ' "' + (e.innerText || '').slice(0, 30) + '"')""",
        inner_width,
    )
    return f'scrollWidth {scroll_width} > innerWidth {inner_width}: {culprits}'


REMOVE = 'Hold to Remove'


def member_row(page: Page, email: str) -> Locator:
    """The member's row of the Team Members table (a card of its own on a phone)."""
    return page.get_by_role('row').filter(has=page.get_by_text(email, exact=True))


def remove_button(page: Page, email: str) -> Locator:
    """The `Hold to Remove` button in the member's row menu (opened here, as a person would)."""
    open_row_menu(page, email)
    return page.get_by_role('menu').get_by_role('menuitem', name=REMOVE, exact=True)


def open_row_menu(page: Page, email: str) -> Locator:
    """Open the member's `More actions` menu; returns the menu."""
    member_row(page, email).get_by_role('button', name='More actions').click()
    menu = page.get_by_role('menu')
    expect(menu).to_be_visible()
    return menu


def close_settled(context: BrowserContext) -> None:
    """Close a context once none of its pages is mid-navigation.

    Chromium can acknowledge closing a page whose navigation is committing and then never close it, so Playwright's
    `close()` waits forever (microsoft/playwright#42366, #42068). It happened here when the bus was sending a signed-out
    page to `/login` as the test ended. Each page first goes to `about:blank`, which supersedes whatever navigation the
    app started and leaves no script behind to start another.
    """
    for page in context.pages:
        try:
            page.goto('about:blank', timeout=5_000)
        except PlaywrightError:  # a page that already crashed or closed: closing the context still ends it
            pass
    context.close()


# socket.io's `io()` as NiceGUI calls it, but connecting only when the test calls `connectNow()`.
LATE_SOCKET = """
(() => {
  let real;
  Object.defineProperty(window, 'io', {
    configurable: true,
    get: () => real && ((url, options) => {
      const socket = real(url, { ...options, autoConnect: false });
      window.connectNow = () => socket.connect();
      return socket;
    }),
    set: (value) => { real = value; },
  });
})();
"""
