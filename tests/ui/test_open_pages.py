"""The open pages a change reaches through the bus (`ui/open_pages.py`), where that meets a page's own action."""

import asyncio
import threading

import pytest
from nicegui.testing import User

from tests.ui.helpers import button, set_up_organization
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
