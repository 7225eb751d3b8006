"""Login CSRF on main: the attacker signs in to their own account and keeps the link their page was about to open
(`/session/start?code=…`, or `/login/code/start?code=…` for an account with a second factor); any site then opens it
in the victim's browser (a cross-site top-level GET carries no proof of where it came from). The victim's session
ended and the victim worked on in the attacker's account (whatever they saved or typed, the attacker had). A
handoff code now works only in the browser whose page it was handed to."""

import asyncio
from collections.abc import Callable

import pytest
from nicegui.testing import User
from nicegui.testing.user_navigate import UserNavigate
from pyotp.totp import TOTP
from sqlmodel import Session

from services.identity import two_factor
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user
from tests.ui.helpers import ADMIN_EMAIL, in_database, set_up_organization, sign_in
from ui.session import COOKIE

ATTACKER = 'mallory@attacker.example'


def attacker_account(*, second_factor: bool) -> Callable[[Session], None]:
    def make(session: Session) -> None:
        mallory = make_user(session, organization=make_organization(session, name='Mallory Inc'), email=ATTACKER)
        if second_factor:
            secret = two_factor.begin_enrolment(session=session, actor=acting(session, mallory)).secret
            assert two_factor.confirm_enrolment(session=session, user=mallory, code=TOTP(secret).now())

    return make


async def link_kept_by_the_attacker(attacker: User, monkeypatch: pytest.MonkeyPatch) -> str:
    """The attacker signs in with their own password, but keeps the link instead of following it."""
    kept: list[str] = []
    await attacker.open('/login')

    def keep(navigate: UserNavigate, target: object, new_tab: bool = False) -> None:
        # Every simulated browser navigates through `UserNavigate.to`: keep the sign-in's link instead of following it.
        if isinstance(target, str) and target.startswith(('/session/start?', '/login/code/start?')):
            kept.append(target)

    monkeypatch.setattr(UserNavigate, 'to', keep)
    await sign_in(attacker, ATTACKER, DEFAULT_PASSWORD)
    for _ in range(300):
        if kept:
            break
        await asyncio.sleep(0.1)  # the sign-in runs off the event loop; the page stays, its link goes to `kept`
    assert kept, 'the sign-in handed out no link'
    return kept[0]


@pytest.mark.parametrize('second_factor', [False, True], ids=['password only', 'with a second factor'])
async def test_a_kept_sign_in_link_opened_by_the_victim_changes_nothing(
    user: User, create_user: Callable[[], User], monkeypatch: pytest.MonkeyPatch, second_factor: bool
) -> None:
    await set_up_organization(user)  # the victim: Ada, signed in
    victim_cookie = user.http_client.cookies[COOKIE]
    await in_database(attacker_account(second_factor=second_factor))
    link = await link_kept_by_the_attacker(create_user(), monkeypatch)
    assert link.startswith('/login/code/start?' if second_factor else '/session/start?')

    await user.open(link)  # what a cross-site page makes the victim's browser do
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')
    await user.should_not_see(ATTACKER)
    assert user.http_client.cookies[COOKIE] == victim_cookie
    await user.open('/')
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')  # the victim's own session still counts
