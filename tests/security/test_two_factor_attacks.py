"""Two-factor sign-in, attacked: a stolen password alone, the second step from another browser or with a forged or
replayed handoff, an expired step, an off-site redirect, a replayed code, and the operator's reset from the command
line."""

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from nicegui import ui
from nicegui.testing import User
from pyotp.totp import TOTP
from sqlmodel import Session, select

from models import AuditAction, AuditEvent, BrowserSession, PendingSignIn
from models import User as Account
from models.base import utcnow
from services.db import write_scope
from services.identity import password_reset, two_factor
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in
from tests.security.test_cli import run_command
from tests.ui.helpers import ADMIN_EMAIL, from_database, handoff_binding, in_database, set_up_organization
from tests.ui.helpers import sign_in as sign_in_with_the_form

# ui/pages/two_factor.py's names (a test must not import a page module: the `user` fixture loads pages via main.py)
PENDING_COOKIE = 'cxt_pending_sign_in'
START_PATH = '/login/code/start'


def enrol(session: Session, email: str = ADMIN_EMAIL) -> str:
    account = session.exec(select(Account).where(Account.email == email)).one()
    me = acting(session, account)
    secret = two_factor.begin_enrolment(session=session, actor=me).secret
    assert two_factor.confirm_enrolment(session=session, user=account, code=TOTP(secret).now()) is not None
    session.delete(session.get_one(BrowserSession, me.session_id))  # the browser it was set up in has signed out since
    return secret


def pending_handoff(session: Session, email: str = ADMIN_EMAIL) -> str:
    account = session.exec(select(Account).where(Account.email == email)).one()
    return two_factor.begin_pending(session=session, user=account, ip='192.0.2.1', user_agent='Test')


async def sign_out_everywhere(user: User) -> None:
    user.find(kind=ui.button, content='Sign out').click()
    await user.should_see('Forgot password?')


async def test_the_password_alone_opens_nothing(user: User) -> None:
    await set_up_organization(user)
    await in_database(enrol)
    await sign_out_everywhere(user)
    await sign_in_with_the_form(user, ADMIN_EMAIL)
    await user.should_see('Authentication code')
    assert await from_database(lambda session: session.exec(select(BrowserSession)).all()) == []  # no session yet
    for path in ('/', '/security', '/help/sidekick'):
        await user.open(path)
        await user.should_see('Forgot password?')


async def test_the_second_step_belongs_to_the_browser_that_typed_the_password(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    await in_database(enrol)
    await sign_out_everywhere(user)
    await sign_in_with_the_form(user, ADMIN_EMAIL)
    await user.should_see('Authentication code')
    assert PENDING_COOKIE in user.http_client.cookies

    stranger = create_user()
    await stranger.open('/login/code')  # no pending cookie of its own
    await stranger.should_see('Forgot password?')
    stranger.http_client.cookies.set(PENDING_COOKIE, 'made-up.0123', path='/login')
    await stranger.open('/login/code')  # a forged one
    await stranger.should_see('Forgot password?')


async def test_a_handoff_works_once_and_only_for_a_minute(user: User) -> None:
    await set_up_organization(user)
    await in_database(enrol)
    handoff = await in_database(pending_handoff)
    first = await user.http_client.get(
        START_PATH, params={'code': handoff, 'next': '//evil.example/x', 'bind': handoff_binding(user, handoff)}
    )
    assert first.status_code == 303
    target = urlsplit(first.headers['location'])
    assert target.path == '/login/code' and parse_qs(target.query)['redirect_to'] == ['/']  # never off-site
    assert 'set-cookie' in first.headers
    again = await user.http_client.get(START_PATH, params={'code': handoff, 'bind': handoff_binding(user, handoff)})
    assert (again.status_code, again.headers['location'], again.headers.get('set-cookie')) == (303, '/login', None)

    stale = await in_database(pending_handoff)

    def age(session: Session) -> None:
        for row in session.exec(select(PendingSignIn).where(PendingSignIn.token_hash == None)):  # noqa: E711
            row.created_at = utcnow() - timedelta(minutes=2)
            session.add(row)

    await in_database(age)
    late = await user.http_client.get(START_PATH, params={'code': stale, 'bind': handoff_binding(user, stale)})
    assert late.headers['location'] == '/login'


async def test_an_expired_second_step_goes_back_to_the_password(user: User) -> None:
    await set_up_organization(user)
    await in_database(enrol)
    await sign_out_everywhere(user)
    await sign_in_with_the_form(user, ADMIN_EMAIL)
    await user.should_see('Authentication code')

    def expire(session: Session) -> None:
        for row in session.exec(select(PendingSignIn)):
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)

    await in_database(expire)
    await user.open('/login/code')
    await user.should_see('Forgot password?')


def test_a_code_seen_over_a_shoulder_is_useless_once_used(database: None) -> None:
    with write_scope() as session:
        organization = make_organization(session)
        ada = make_user(session, organization=organization, email='ada@example.com')
    with write_scope() as session:
        secret = enrol(session, 'ada@example.com')
    code = TOTP(secret).at(utcnow().timestamp() + 30)
    tokens = []
    for _ in range(2):  # the owner's browser and the onlooker's, each past the password
        with write_scope() as session:
            handoff = pending_handoff(session, sign_in('ada@example.com', DEFAULT_PASSWORD).email)
        with write_scope() as session:
            tokens.append(two_factor.complete_pending_handoff(session=session, code=handoff))
    with write_scope() as session:
        assert two_factor.check_sign_in_code(session=session, token=tokens[0], code=code).user is not None
    with write_scope() as session:
        assert two_factor.check_sign_in_code(session=session, token=tokens[1], code=code).user is None
    assert ada.email == 'ada@example.com'


def test_reset_2fa_from_the_command_line(database: None) -> None:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        make_user(session, organization=organization, email='ada@example.com')
    with write_scope() as session:
        enrol(session, 'ada@example.com')
    assert 'reset-2fa' in run_command('--help').stdout
    done = run_command('reset-2fa', 'ada@example.com')
    assert done.returncode == 0, done.stderr
    assert 'ada@example.com has no second factor now' in done.stdout
    with write_scope() as session:
        account = session.exec(select(Account).where(Account.email == 'ada@example.com')).one()
        assert two_factor.password_is_enough(session=session, user=account)
        (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == AuditAction.TWO_FACTOR_RESET)).all()
        assert (event.actor_email, event.target) == ('command line', 'ada@example.com')
    again = run_command('reset-2fa', 'ada@example.com')
    assert again.returncode == 1 and 'ada@example.com has no second factor to reset' in again.stderr
    unknown = run_command('reset-2fa', 'nobody@example.com')
    assert unknown.returncode == 1 and 'No active account uses nobody@example.com' in unknown.stderr


@pytest.mark.parametrize('code', ['', ' ', '12345', '1234567', 'x' * 5000, '١٢٣٤٥٦', '12 34 56 78'])
def test_odd_codes_are_wrong_codes_not_errors(database: None, code: str) -> None:
    with write_scope() as session:
        organization = make_organization(session)
        make_user(session, organization=organization, email='ada@example.com')
    with write_scope() as session:
        enrol(session, 'ada@example.com')
    with write_scope() as session:
        handoff = pending_handoff(session, 'ada@example.com')
    with write_scope() as session:
        token = two_factor.complete_pending_handoff(session=session, code=handoff)
    with write_scope() as session:
        assert two_factor.check_sign_in_code(session=session, token=token, code=code).user is None


async def test_a_password_reset_link_alone_does_not_pass_the_second_factor(user: User) -> None:
    await set_up_organization(user)
    await in_database(enrol)
    await sign_out_everywhere(user)

    def link(session: Session) -> str:
        issued = password_reset.request_reset(session=session, email=ADMIN_EMAIL)
        assert issued is not None
        return urlsplit(issued.link).path

    await user.open(await in_database(link))  # whoever reads the mailbox
    user.find('New password').type('a brand new passphrase')
    user.find(kind=ui.button, content='Reset password').click()
    await user.should_see('Authentication code')
    await user.open('/')
    await user.should_see('Forgot password?')
