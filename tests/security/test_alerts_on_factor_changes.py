"""On main, admins were mailed about the API key and about admins, but not when a second factor was turned off or
reset, the organization stopped requiring two-factor, a passkey or an authenticator app was added, or a password
changed: all of which an attacker holding a password does first. And the alert switch itself could be turned off
without the password and without a trace. Mails are read from the real test SMTP server."""

import time

import pytest
from pyotp.totp import TOTP
from sqlmodel import select

from models import AuditEvent, Role, User
from services import config
from services.db import read_scope, write_scope
from services.errors import ReauthenticationRequired
from services.identity import auth, passkeys, password_reset, two_factor
from services.team import alerts
from tests import smtp_server as smtp
from tests.factories import acting, make_organization, make_user
from tests.passkey_authenticator import SoftAuthenticator
from tests.smtp_server import SmtpServer

smtp_server = smtp.smtp_server  # fixture
mail_env = smtp.mail_env  # fixture

ADDRESS = '203.0.113.7'
ADMINS = {'ada@example.com', 'bob@example.com'}


class Team:
    def __init__(self) -> None:
        with write_scope() as session:
            organization = make_organization(session, name='Acme Support')
            self.ada = make_user(session, organization=organization, email='ada@example.com', name='Ada')
            self.bob = make_user(session, organization=organization, email='bob@example.com', name='Bob')
            self.max = make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER)


@pytest.fixture
def team(mail_env: SmtpServer, database: None, monkeypatch: pytest.MonkeyPatch) -> Team:
    monkeypatch.setenv('CXT_PUBLIC_URL', 'https://dashboard.test')  # passkeys need https and a host name
    config.configure(config.load_settings())
    made = Team()
    alerts.wait_until_sent()
    return made


def subjects(server: SmtpServer) -> dict[str, set[str]]:
    """Subject -> who received it, once every alert handed over so far is sent."""
    alerts.wait_until_sent()
    found: dict[str, set[str]] = {}
    for mail in server.messages:
        found.setdefault(' '.join(mail.subject.split()), set()).add(mail.recipients[0])  # unfolded
    return found


def set_up_app(user: User) -> str:
    with write_scope() as session:
        secret = two_factor.begin_enrolment(session=session, actor=acting(session, user)).secret
        assert two_factor.confirm_enrolment(session=session, user=user, code=TOTP(secret).now(), ip=ADDRESS)
    return secret


def alert(subject: str) -> str:
    return f'Security alert: {subject} (Acme Support)'


def test_an_authenticator_app_set_up_and_turned_off(team: Team, mail_env: SmtpServer) -> None:
    set_up_app(team.max)
    with write_scope() as session:
        two_factor.turn_off(session=session, actor=acting(session, team.max, ip=ADDRESS))
    mails = subjects(mail_env)
    assert mails[alert('max@example.com set up an authenticator app')] == ADMINS
    assert mails[alert('max@example.com turned off their authenticator app')] == ADMINS
    assert all(f'From: {ADDRESS}' in mail.text for mail in mail_env.messages)


def test_a_second_factor_reset_and_the_requirement_turned_off(team: Team, mail_env: SmtpServer) -> None:
    secret = set_up_app(team.ada)
    set_up_app(team.max)
    with write_scope() as session:
        two_factor.set_requirement(session=session, actor=acting(session, team.ada), required=True)
    with write_scope() as session:
        assert two_factor.reset_second_factor(
            session=session,
            actor=acting(session, team.ada),
            user_id=team.max.id or 0,
            code=TOTP(secret).at(time.time() + 30),
        )
    with write_scope() as session:
        two_factor.set_requirement(session=session, actor=acting(session, team.ada), required=False)
    mails = subjects(mail_env)
    assert mails[alert("max@example.com's second factor was reset")] == ADMINS
    assert mails[alert('Two-factor authentication is no longer required')] == ADMINS


def test_a_passkey_added(team: Team, mail_env: SmtpServer) -> None:
    slot = passkeys.ChallengeSlot()
    with read_scope() as session:
        options = passkeys.registration_options(session=session, actor=team.max, challenge=slot.issue())
    credential = SoftAuthenticator(origin='https://dashboard.test').create(options)
    with write_scope() as session:
        passkeys.add_passkey(
            session=session, actor=team.max, name='Laptop', credential=credential, challenge=slot.take(), ip=ADDRESS
        )
    assert subjects(mail_env)[alert('max@example.com added a passkey')] == ADMINS


def test_a_password_changed_or_reset(team: Team, mail_env: SmtpServer) -> None:
    with write_scope() as session:
        auth.change_password(
            session=session, user=team.max, password_hash=auth.hash_password('new passphrase 1'), keep_session_id=None
        )
    with write_scope() as session:
        issued = password_reset.request_reset(session=session, email=team.bob.email)
    assert issued is not None
    with write_scope() as session:
        password_reset.reset_password(
            session=session, token=issued.link.rsplit('/', 1)[1], password_hash=auth.hash_password('new passphrase 2')
        )
    mails = subjects(mail_env)
    assert mails[alert('max@example.com changed their password')] == ADMINS
    assert mails[alert('bob@example.com reset their password')] == ADMINS


def test_the_alert_switch_asks_for_the_password_and_is_audited(team: Team) -> None:
    with write_scope() as session, pytest.raises(ReauthenticationRequired):
        alerts.set_alerts_enabled(
            session=session, actor=acting(session, team.bob, password_minutes_ago=None), enabled=False
        )
    with write_scope() as session:
        alerts.set_alerts_enabled(session=session, actor=acting(session, team.bob), enabled=False)
    with read_scope() as session:
        assert not alerts.alerts_enabled(session=session, actor=team.bob)
        events = session.exec(select(AuditEvent).where(AuditEvent.actor_email == team.bob.email)).all()
    assert [event.action for event in events] == ['alerts.turned_off']
