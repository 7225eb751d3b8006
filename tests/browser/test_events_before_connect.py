"""What a person does on a page before its socket has connected reaches the server in the order they did it.

NiceGUI holds every event until the handshake, each on its own 10 ms timer, so the first ones after it went out in no
particular order: `Sign in`, clicked right after the password was typed (a password manager's autofill and submit, a
fast hand on a fresh page), could reach the server before the password and fail with `Invalid email or password`.
Seen in the browser suite while Tailwind was compiled ahead of time (pages ready sooner). Here the socket connects
only once the test has typed and clicked."""

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, DESKTOP, LATE_SOCKET

pytestmark = pytest.mark.browser

ATTEMPTS = 5  # the old order lost the password now and then (about 1 sign-in in 15 here)


def test_typing_and_clicking_before_the_socket_connects_signs_in(admin_app: AppProcess, browser: Browser) -> None:
    for _ in range(ATTEMPTS):
        context = browser.new_context(base_url=admin_app.url, viewport=DESKTOP)
        context.add_init_script(LATE_SOCKET)
        page = context.new_page()
        page.goto('/login')
        page.get_by_label('Email').fill(ADMIN.email)
        page.get_by_label('Password').fill(ADMIN.password)
        page.get_by_role('button', name='Sign in').click()
        assert not page.evaluate('() => window.socket.connected'), 'all of it before the connect'
        # Waiting in the socket's own buffer, in the order it was done: the email, the password, then the click.
        waiting = page.evaluate(
            "() => window.socket.sendBuffer.filter(p => p.data[0] === 'event').map(p => p.data[1].args.join(' '))"
        )
        typed = [index for index, args in enumerate(waiting) if ADMIN.email in args or ADMIN.password in args]
        assert len(waiting) >= 3 and len(typed) == 2 and ADMIN.email in waiting[typed[0]], waiting
        assert typed[1] < len(waiting) - 1, f'the click last: {waiting}'
        page.evaluate('() => window.connectNow()')
        expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()
        context.close()
