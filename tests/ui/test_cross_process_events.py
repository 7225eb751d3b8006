"""Events from other processes (PostgreSQL NOTIFY) applied to this process's open pages; the database decides."""

import dataclasses
from collections.abc import Callable

import pytest
from nicegui.client import Client
from nicegui.testing import User
from sqlmodel import Session, col, delete, func, select

from models import BrowserSession
from models import User as Account
from services import events
from services.identity import sessions
from tests.ui import helpers
from tests.ui.helpers import ADMIN_EMAIL
from ui import open_pages
from ui.session import start_url


async def test_sessions_ended_elsewhere_close_only_the_pages_whose_session_is_gone(
    user: User, create_user: Callable[[], User], monkeypatch: pytest.MonkeyPatch
) -> None:
    await helpers.set_up_organization(user)
    laptop = create_user()  # a second browser, signed in through the services as the sign-in page does

    def start(db: Session) -> str:
        admin = db.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
        return sessions.start(session=db, user=admin, ip='192.0.2.7', user_agent='Laptop')

    await helpers.open_handoff(laptop, start_url(await helpers.in_database(start)))
    await laptop.should_see(f'Signed in as {ADMIN_EMAIL}')
    assert user.client is not None and laptop.client is not None
    opened: list[tuple[str, str]] = []
    monkeypatch.setattr(Client, 'open', lambda self, target, new_tab=False: opened.append((self.id, target)))
    admin_id = await helpers.from_database(
        lambda db: db.exec(select(Account.id).where(Account.email == ADMIN_EMAIL)).one()
    )
    ended = events.Event(kind=events.EventKind.SESSIONS_ENDED, organization_id=None, user_id=admin_id, origin='other')

    await open_pages.apply_event(ended)
    assert opened == []  # the payload alone ends nothing: both sessions are still in the database

    def end_newest(db: Session) -> None:
        newest = db.exec(select(func.max(BrowserSession.id)).where(BrowserSession.user_id == admin_id)).one()
        db.exec(delete(BrowserSession).where(col(BrowserSession.id) == newest))

    await helpers.in_database(end_newest)
    await open_pages.apply_event(dataclasses.replace(ended, origin=events.PROCESS_ID))
    assert opened == []  # this process's own change was already applied by the page that made it
    await open_pages.apply_event(ended)
    # The laptop's page goes to /login (with any earlier page of the laptop the simulation still keeps: a real
    # browser has closed those); the first browser's page, whose session is alive, stays.
    assert (laptop.client.id, '/login') in opened
    assert {target for _, target in opened} == {'/login'}
    assert user.client.id not in {client_id for client_id, _ in opened}
