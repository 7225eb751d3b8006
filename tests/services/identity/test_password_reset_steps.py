"""The password reset as use cases: `Send reset link` (mailed through a real SMTP server, outside the transaction)
and `Reset password` (where the browser goes next); on both engines."""

from urllib.parse import urlsplit

import pytest
from pyotp.totp import TOTP

from models import User
from services.acting import SCOPES
from services.errors import ValidationFailed
from services.identity import password_reset, sessions, sign_in, two_factor
from services.identity.next_step import NextStep
from tests import smtp_server as smtp
from tests.factories import acting, make_organization, make_user
from tests.smtp_server import SmtpServer

mail_env, smtp_server = smtp.mail_env, smtp.smtp_server  # fixtures

NEW_PASSWORD = 'a brand new password'


@pytest.fixture
def ada(mail_env: SmtpServer, database: None) -> User:
    with SCOPES.write() as session:
        return make_user(session, organization=make_organization(session, name='Acme'), email='ada@example.com')


def emailed_token(mail_env: SmtpServer) -> str:
    password_reset.send_reset_link(scopes=SCOPES, email='Ada@Example.com', ip='192.0.2.1')  # sent when it returns
    # The reset mail, whatever else the admin was mailed meanwhile (an alert about the second factor just set up).
    (link,) = [link for received in mail_env.messages for link in received.links if '/reset-password/' in link]
    return urlsplit(link).path.rsplit('/', 1)[1]


def reset(token: str, password: str = NEW_PASSWORD) -> password_reset.PasswordReset:
    return password_reset.reset_with_link(
        scopes=SCOPES, token=token, password=password, ip='192.0.2.1', user_agent='Test'
    )


def test_the_emailed_link_sets_the_password_and_signs_this_browser_in(ada: User, mail_env: SmtpServer) -> None:
    before = sign_in.sign_in_with_password(
        scopes=SCOPES, email='ada@example.com', password='correct horse battery', ip=None, user_agent=None
    )
    earlier = sign_in.start_session(scopes=SCOPES, code=before.handoff, previous_token=None)
    token = emailed_token(mail_env)
    with pytest.raises(ValidationFailed) as short:
        reset(token, password='short')
    assert list(short.value.errors) == ['password']
    done = reset(token)
    assert done.user_id == ada.id
    started = sign_in.start_session(scopes=SCOPES, code=done.next_step.handoff, previous_token=None)
    assert SCOPES.reading(lambda session: sessions.signed_in(session=session, token=started)) is not None
    assert SCOPES.reading(lambda session: sessions.signed_in(session=session, token=earlier)) is None  # ended
    assert (
        sign_in.sign_in_with_password(
            scopes=SCOPES, email='ada@example.com', password=NEW_PASSWORD, ip=None, user_agent=None
        ).step
        == NextStep.SESSION
    )
    with pytest.raises(ValidationFailed, match='already been used'):
        reset(token)


def test_an_unknown_address_gets_no_email(ada: User, mail_env: SmtpServer) -> None:
    password_reset.send_reset_link(scopes=SCOPES, email='nobody@example.com', ip=None)
    password_reset.send_reset_link(scopes=SCOPES, email='not an address', ip=None)
    assert mail_env.messages == []


def test_a_mailbox_alone_never_signs_in_an_account_with_a_second_factor(ada: User, mail_env: SmtpServer) -> None:
    with SCOPES.write() as session:
        secret = two_factor.begin_enrolment(session=session, actor=acting(session, ada)).secret
    with SCOPES.write() as session:
        assert two_factor.confirm_enrolment(session=session, user=ada, code=TOTP(secret).now())
    done = reset(emailed_token(mail_env))
    assert done.next_step.step == NextStep.SECOND_STEP
