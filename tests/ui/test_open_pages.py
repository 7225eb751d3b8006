"""The open pages a change reaches through the bus (`ui/open_pages.py`), where that meets a page's own action."""

import asyncio
import threading
from typing import Any

import pytest
from nicegui import context
from nicegui.testing import User
from nicegui.testing.user_navigate import UserNavigate
from sqlmodel import select

from models import User as Account
from services.db import write_scope
from services.identity import sessions
from tests.ui.helpers import ADMIN_EMAIL, button, set_up_organization
from ui import open_pages


def server_opens(simulated: User) -> list[str]:
    """The pages the server tells this simulated browser to open (`client.open`), recorded as they are sent."""
    client = simulated.client
    assert client is not None
    opened: list[str] = []
    original_emit = client.outbox._emit

    async def emit(message: tuple) -> None:
        await original_emit(message)
        _, message_type, data = message
        if message_type == 'open':
            opened.append(data['path'])

    client.outbox._emit = emit  # type: ignore[method-assign]
    return opened


async def test_sign_out_everywhere_is_not_overtaken_by_the_plain_login_its_own_change_brings(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bus sends every open page of the person to `/login` once their sessions end; the page that pressed `Sign
    out everywhere` goes to `/login` saying so by itself. A slow read of which sessions ended (a busy database) made
    the plain `/login` arrive after the page's own navigation, so the browser lost the notice."""
    await set_up_organization(user)
    await user.open('/security')
    await user.should_see('Active sessions')
    opened = server_opens(user)
    checked = threading.Event()
    ended_pages = open_pages._ended_pages

    def slow_ended_pages(pages: dict[str, tuple[int, str | None]]) -> dict[str, str]:
        threading.Event().wait(0.5)  # the read answers after the page has gone on from its action
        ended = ended_pages(pages)
        checked.set()
        return ended

    monkeypatch.setattr(open_pages, '_ended_pages', slow_ended_pages)
    button(user, 'Sign out everywhere').click()
    await user.should_see('Sign out everywhere?')
    user.find(marker='confirm-sign-out-everywhere').click()
    await user.should_see('You are signed out everywhere')
    for _ in range(100):  # the bus's check of this page ran (and would have sent it away by now)
        if checked.is_set():
            break
        await asyncio.sleep(0.05)
    assert checked.is_set()
    await asyncio.sleep(0.2)
    assert opened == [], 'nothing sent the page to a plain /login after it left saying why'


async def test_a_page_sent_away_is_not_reloaded_by_the_second_event_of_the_same_change(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removal ends its person's sessions and removes them: two events, each checking their open pages. The first
    sends the Security page to `/login` saying `You were removed from ...`; the second, finding no page of theirs
    left, reloaded every session list of theirs, and the sent page's list, finding its session ended, sent it to a
    plain `/login` that overtook the notice (seen in CI, 1 run in 3 under load)."""
    await set_up_organization(user)
    await user.open('/security')
    # Its lists loaded (a list still loading when the session ends finds it ended and goes to `/login` itself):
    await user.should_see(marker='current-session')
    await user.should_see(marker='no-passkeys')
    await user.should_see('Set up authenticator app')
    page = user.client
    assert page is not None
    opened = server_opens(user)
    navigated_from: list[str] = []
    navigate = UserNavigate.to

    def to(self: UserNavigate, target: Any, new_tab: bool = False) -> None:
        navigated_from.append(context.client.id)
        navigate(self, target, new_tab)

    monkeypatch.setattr(UserNavigate, 'to', to)

    def end_every_session() -> int:  # the first event, through the bus once committed
        with write_scope() as db:
            admin_id = db.exec(select(Account.id).where(Account.email == ADMIN_EMAIL)).one()
            assert admin_id is not None
            sessions.end_all(session=db, user_id=admin_id)
            return admin_id

    admin_id = await asyncio.to_thread(end_every_session)
    for _ in range(100):
        if opened:
            break
        await asyncio.sleep(0.05)
    assert opened == ['/login'], 'the bus sent the page away'
    assert await open_pages.end_ended_sessions(admin_id) == 0  # the second event: no page of theirs is left open
    await asyncio.sleep(0.5)  # a reload would have run by now
    assert page.id not in navigated_from, 'nothing sent the page anywhere after the bus had sent it away'
