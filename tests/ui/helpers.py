"""What every UI test does first, written once."""

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from nicegui import ui
from nicegui.testing import User
from nicegui.testing.user_interaction import UserInteraction
from sqlmodel import Session, select

from models import BrowserSession
from models import User as Account
from models.base import utcnow
from services.db import read_scope, write_scope
from ui import sign_in_binding

T = TypeVar('T')

ADMIN_EMAIL = 'ada@example.com'
PASSWORD = 'correct horse battery'


async def set_up_organization(user: User, *, password: str = PASSWORD) -> None:
    """First run: create Acme Support with Ada as its admin, and land on the dashboard."""
    await user.open('/setup')
    user.find('Organization name').type('Acme Support')
    user.find('Your name').type('Ada Admin')
    user.find('Email').type(ADMIN_EMAIL)
    user.find('Password').type(password)
    user.find('Create organization').click()
    await user.should_see(f'Signed in as {ADMIN_EMAIL}', retries=100)
    # The first tab fills in a moment after the frame (its card reads the database off the event loop).
    await user.should_see('Step 1: Generate API Key', retries=100)


async def in_database(work: Callable[[Session], T]) -> T:
    """Database work done by a test, off the event loop like the app's own (which refuses a session on the loop)."""

    def in_transaction() -> T:
        with write_scope() as session:
            return work(session)

    return await asyncio.to_thread(in_transaction)


async def from_database(query: Callable[[Session], T]) -> T:
    """A read done by a test, off the event loop, in a read transaction."""

    def in_transaction() -> T:
        with read_scope() as session:
            return query(session)

    return await asyncio.to_thread(in_transaction)


async def password_entered_minutes_ago(minutes: float, email: str = ADMIN_EMAIL) -> None:
    """As if `email` last typed their password `minutes` ago in each of their sessions."""

    def age(session: Session) -> None:
        user = session.exec(select(Account).where(Account.email == email)).one()
        for row in session.exec(select(BrowserSession).where(BrowserSession.user_id == user.id)):
            row.password_confirmed_at = utcnow() - timedelta(minutes=minutes)
            session.add(row)

    await in_database(age)


def button(user: User, label: str) -> UserInteraction:
    """The button labelled `label` (card titles may contain the same words)."""
    return user.find(kind=ui.button, content=label)


async def sign_in(user: User, email: str, password: str = PASSWORD) -> None:
    """Fill in the sign-in form and wait, like a person, until the button is usable again or the page moved on."""
    user.find('Email').clear().type(email)
    user.find('Password').clear().type(password)
    button(user, 'Sign in').click()
    for _ in range(50):
        await asyncio.sleep(0.05)
        try:
            buttons = user.find(kind=ui.button, content='Sign in').elements
        except AssertionError:
            return  # signed in: the page moved on
        if all(element.enabled for element in buttons):
            return


def handoff_binding(browser: User, code: str) -> str:
    """The `bind` a sign-in page gives a handoff `code` for `browser` (`ui/sign_in_binding.py`): from the nonce of the
    last page the browser was served, so open a page first."""
    newest = (browser.http_client.cookies.get(sign_in_binding.COOKIE) or '').split('.')[0]
    assert newest, 'the browser has opened no page yet'
    return sign_in_binding.binding(newest, code)


async def open_handoff(browser: User, url: str) -> None:
    """Open a sign-in handoff link (`session.start_url`) in `browser` as its own sign-in page does: a page first, then
    the link bound to that page's nonce."""
    await browser.open('/login')
    code = parse_qs(urlsplit(url).query)['code'][0]
    await browser.open(f'{url}&{urlencode({sign_in_binding.BIND_PARAMETER: handoff_binding(browser, code)})}')
