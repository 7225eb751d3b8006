"""What a person does in the browser, in a few words each."""

import re
from dataclasses import dataclass

from playwright.sync_api import Locator, Page, expect

MASKED_KEY = re.compile(r'^cxt_•+[A-Za-z0-9]{4}$')
KEY = re.compile(r'^cxt_[A-Za-z0-9]{40}$')
DESKTOP = {'width': 1280, 'height': 900}
PHONE = {'width': 390, 'height': 844}


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    password: str = 'correct horse battery staple'


ADMIN = Person('Ada Admin', 'ada@example.com')
ORGANIZATION = 'Acme Support'


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
    return page.get_by_label('API Key')


def button(page: Page | Locator, name: str) -> Locator:
    return page.get_by_role('button', name=name, exact=True)


def no_horizontal_scroll(page: Page) -> tuple[int, int]:
    """(scrollWidth, innerWidth) of the document: the first must not exceed the second."""
    return page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]')
