"""Password reset: one-hour single-use links, the same answer for unknown addresses, sessions end."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from models import AuditEvent, LoginFailure, PasswordResetToken, Role, User, UserStatus
from models.base import utcnow
from services.db import write_scope
from services.errors import ValidationFailed
from services.identity import auth, password_reset, sessions
from tests import smtp_server as smtp
from tests.factories import make_organization, make_user
from tests.smtp_server import SmtpServer

mail_env, smtp_server = smtp.mail_env, smtp.smtp_server  # fixtures

NEW_PASSWORD = 'a brand new password'


@pytest.fixture
def account(database: None) -> User:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        return make_user(session, organization=organization, role=Role.ADMIN, name='Ada Admin', email='ada@example.com')


def request(email: str) -> password_reset.IssuedReset | None:
    with write_scope() as session:
        return password_reset.request_reset(session=session, email=email)


def issue(email: str) -> password_reset.IssuedReset:
    issued = request(email)
    assert issued is not None, f'no reset link for {email}'
    return issued


def token_of(issued: password_reset.IssuedReset) -> str:
    return urlsplit(issued.link).path.rsplit('/', 1)[1]


def reset(token: str, password: str = NEW_PASSWORD) -> User:
    with write_scope() as session:
        return password_reset.reset_password(
            session=session, token=token, password_hash=auth.new_password_hash(password)
        )


def state(token: str) -> str:
    with write_scope() as session:
        return password_reset.token_state(session=session, token=token)


def test_unknown_and_invalid_addresses_get_nothing(account: User) -> None:
    assert request('nobody@example.com') is None
    assert request('not an address') is None
    with write_scope() as session:
        assert session.exec(select(PasswordResetToken)).all() == []


def test_reset_sets_the_password_and_ends_sessions(account: User) -> None:
    with write_scope() as session:
        handoff = sessions.start(session=session, user=account, ip=None, user_agent=None)
    with write_scope() as session:
        old_token = sessions.complete_handoff(session=session, code=handoff, previous_token=None)
    issued = request(' ADA@example.com ')
    assert issued is not None and issued.email == 'ada@example.com'
    token = token_of(issued)
    with write_scope() as session:
        stored = session.exec(select(PasswordResetToken)).one()
        assert stored.token_hash != token
        assert stored.expires_at - stored.created_at == timedelta(hours=1)
        session.add(LoginFailure(email='ada@example.com'))
    assert state(token) == 'valid'
    user = reset(token)
    assert auth.check_password(NEW_PASSWORD, user.password_hash)
    with write_scope() as session:
        assert sessions.signed_in(session=session, token=old_token) is None
        assert session.exec(select(LoginFailure)).all() == []
        assert session.exec(select(AuditEvent.action).where(AuditEvent.action == 'password.reset')).one()
    assert state(token) == 'used'
    with pytest.raises(ValidationFailed, match='This reset link has already been used'):
        reset(token, 'yet another password')


def test_a_reset_kills_every_other_open_link(account: User) -> None:
    first, second = issue(account.email), issue(account.email)
    reset(token_of(second))
    assert state(token_of(first)) == 'used'


def test_expired_and_unknown_links(account: User) -> None:
    issued = issue(account.email)
    with write_scope() as session:
        stored = session.exec(select(PasswordResetToken)).one()
        stored.expires_at = utcnow() - timedelta(seconds=1)
        session.add(stored)
    with pytest.raises(ValidationFailed, match='This reset link has expired'):
        reset(token_of(issued))
    with pytest.raises(ValidationFailed, match='This reset link is not valid'):
        reset('made-up-token')
    with write_scope() as session:
        assert auth.check_password('correct horse battery', session.get_one(User, account.id).password_hash)


def test_short_password_is_refused_and_the_link_stays_usable(account: User) -> None:
    issued = issue(account.email)
    with pytest.raises(ValidationFailed, match='Use at least 10 characters'):
        reset(token_of(issued), 'short')
    assert state(token_of(issued)) == 'valid'


def test_a_removed_account_gets_no_link(account: User) -> None:
    issued = issue(account.email)
    with write_scope() as session:
        user = session.get_one(User, account.id)
        user.status = UserStatus.REMOVED
        session.add(user)
    assert request(account.email) is None
    assert state(token_of(issued)) == 'unknown'


def test_requests_are_limited_per_hour(account: User) -> None:
    for _ in range(password_reset.HOURLY_LIMIT):
        assert request(account.email) is not None
    assert request(account.email) is None


def test_reset_email(mail_env: SmtpServer, account: User) -> None:
    issued = issue(account.email)
    password_reset.send_reset_email(issued)
    (received,) = mail_env.wait_for(1)
    assert received.recipients == ['ada@example.com']
    assert received.subject == 'Reset your CX Toolbox password for Acme Support'
    assert received.links == [issued.link]
    assert issued.link.startswith('http://dashboard.test/reset-password/')
    assert '1 hour' in received.text
    assert f'href="{issued.link}"' in received.html
