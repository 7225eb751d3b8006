"""Sessions, attacked as on main: a planted cookie riding the victim's sign-in (fixation), a copied cookie used after
sign-out, a stale session, and a sign-in link that sends the person off-site."""

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from nicegui.testing import User
from sqlmodel import Session, select

from models import BrowserSession
from models.base import utcnow
from services.db import write_scope
from services.identity import sessions
from tests.factories import make_organization, make_user
from tests.ui.helpers import ADMIN_EMAIL, PASSWORD, button, in_database, set_up_organization, sign_in
from ui.session import COOKIE, safe_redirect_target


async def is_signed_in(visitor: User) -> bool:
    """What the visitor's browser gets for `/`: the dashboard, or the sign-in page."""
    await visitor.open('/')
    try:
        await visitor.should_see('Signed in as', retries=3)
    except AssertionError:
        await visitor.should_see('Forgot password?')
        return False
    return True


async def test_a_cookie_planted_before_sign_in_is_never_signed_in(user: User, create_user: Callable[[], User]) -> None:
    attacker = create_user()
    await attacker.open('/setup')
    planted = dict(attacker.http_client.cookies)
    assert planted, 'the page handed out its browser cookie'
    # The victim's browser carries the attacker's cookie, then the victim signs in (here: sets the instance up).
    for name, value in planted.items():
        user.http_client.cookies.set(name, value)
    await set_up_organization(user)
    assert COOKIE in user.http_client.cookies, 'the sign-in gave the victim a session cookie of its own'
    assert not await is_signed_in(attacker)


async def test_a_copied_cookie_stops_working_at_sign_out(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    thief = create_user()
    thief.http_client.cookies.set(COOKIE, user.http_client.cookies[COOKIE])
    assert await is_signed_in(thief)
    user.find('Sign out').click()
    await user.should_see('Forgot password?')
    assert not await is_signed_in(thief)


async def test_signing_in_again_replaces_the_session(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    before = user.http_client.cookies[COOKIE]
    await user.open('/login')  # already signed in: straight to the dashboard
    await user.should_see('Signed in as')
    await in_database(_end_all_sessions)
    await user.open('/login')
    await sign_in(user, ADMIN_EMAIL, PASSWORD)
    await user.should_see('Signed in as')
    after = user.http_client.cookies[COOKIE]
    assert after != before
    assert await in_database(lambda session: len(session.exec(select(BrowserSession)).all())) == 1


def _end_all_sessions(session: Session) -> None:
    for row in session.exec(select(BrowserSession)):
        session.delete(row)


@pytest.fixture
def token(database: None) -> str:
    with write_scope() as session:
        user = make_user(session, organization=make_organization(session))
        code = sessions.start(session=session, user=user, ip='192.0.2.1', user_agent='Test')
    with write_scope() as session:
        issued = sessions.complete_handoff(session=session, code=code, previous_token=None)
    assert issued is not None
    return issued


def _age(*, created: timedelta = timedelta(0), last_seen: timedelta = timedelta(0)) -> None:
    with write_scope() as session:
        row = session.exec(select(BrowserSession)).one()
        row.created_at -= created
        row.expires_at -= created
        row.last_seen_at -= last_seen
        session.add(row)


def signed_in(token: str) -> bool:
    with write_scope() as session:
        return sessions.signed_in(session=session, token=token) is not None


def test_a_session_ends_14_days_after_sign_in(token: str) -> None:
    _age(created=timedelta(days=13, hours=23))
    assert signed_in(token)
    _age(created=timedelta(hours=1))
    assert not signed_in(token)


def test_a_session_ends_after_12_idle_hours(token: str) -> None:
    _age(last_seen=timedelta(hours=11, minutes=59))
    assert signed_in(token)
    _age(last_seen=timedelta(minutes=1))
    assert not signed_in(token)


def test_a_handoff_code_works_once_and_only_for_a_minute(database: None) -> None:
    with write_scope() as session:
        user = make_user(session, organization=make_organization(session))
        fresh = sessions.start(session=session, user=user, ip=None, user_agent=None)
        stale = sessions.start(session=session, user=user, ip=None, user_agent=None)
        for row in session.exec(select(BrowserSession)):
            if row.handoff_hash != sessions.crypto.sha256_hex(fresh):
                row.created_at = utcnow() - timedelta(seconds=61)
                session.add(row)
    with write_scope() as session:
        assert sessions.complete_handoff(session=session, code=stale, previous_token=None) is None
        assert sessions.complete_handoff(session=session, code=fresh, previous_token=None) is not None
    with write_scope() as session:
        assert sessions.complete_handoff(session=session, code=fresh, previous_token=None) is None


@pytest.mark.parametrize(
    'target',
    [
        '/\t/evil.example/x',  # what `/%09/evil.example/x` decodes to: browsers drop the tab and go off-site
        '/\n/evil.example',
        '//evil.example',
        '/\\evil.example',
        'https://evil.example/',
        'javascript:alert(1)',
        '/ /evil.example',
        '/%5Cevil',
    ],
)
def test_sign_in_never_sends_the_person_off_site(target: str) -> None:
    assert safe_redirect_target(target) in {'/', '/%5Cevil'}


def test_same_site_targets_are_kept() -> None:
    assert safe_redirect_target('/help/sidekick?x=1') == '/help/sidekick?x=1'


async def test_a_tab_in_the_sign_in_target_lands_on_the_dashboard(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await user.open('/login?redirect_to=/%09/evil.example/x')
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')
    went_to = urlsplit(user.back_history[-1])
    assert (went_to.path, parse_qs(went_to.query)['next']) == ('/session/start', ['/'])


async def test_a_session_cookie_the_server_did_not_sign_is_refused(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    issued = user.http_client.cookies[COOKIE]
    token, _, signature = issued.rpartition('.')
    forger = create_user()
    for forged in (token, f'{token}.{"0" * len(signature)}', f'{token}x.{signature}'):
        forger.http_client.cookies.set(COOKIE, forged)
        assert not await is_signed_in(forger), forged
    forger.http_client.cookies.set(COOKIE, issued)
    assert await is_signed_in(forger), 'the real cookie still works'
