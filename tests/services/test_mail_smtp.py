"""services.mail against real SMTP servers that ask for a login, refuse a sender or recipient, or speak another
protocol than configured: each failure is one reason an admin can act on, and nothing is half-sent."""

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from services import config, mail
from services.errors import ExternalServiceError
from tests import smtp_server as smtp
from tests.smtp_server import SmtpServer, free_port, point_settings_at

smtp_server = smtp.smtp_server  # fixture

USER = 'mailer@acme.example'
PASSWORD = 'app-password-1'
MESSAGE = mail.Email(
    to='grace@example.com',
    subject='You are invited to Acme Support',
    text='Join us: http://dashboard.test/invite/abc',
    html='<p>Join us</p>',
)


class LoginServer(SmtpServer):
    """A collecting SMTP server offering AUTH without TLS (like a local relay); it records every login attempt and
    accepts only USER with PASSWORD."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[str] = []
        self._controller = Controller(
            self._collector,
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append(data.login.decode())
        valid = (data.login.decode(), data.password.decode()) == (USER, PASSWORD)
        return AuthResult(success=valid, handled=False)  # not handled: the server answers 535 on a failure


class RefusingHandler:
    """Answers MAIL FROM or RCPT TO with a refusal, like a relay with rules; counts the messages it took."""

    def __init__(self, *, sender_reply: str | None = None, recipient_reply: str | None = None) -> None:
        self.sender_reply = sender_reply
        self.recipient_reply = recipient_reply
        self.accepted = 0

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.sender_reply:
            return self.sender_reply
        envelope.mail_from = address
        return '250 OK'

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.recipient_reply:
            return self.recipient_reply
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.accepted += 1
        return '250 Message accepted for delivery'


class AsciiOnlyServer(SmtpServer):
    """A collecting SMTP server without SMTPUTF8 (aiosmtpd's Controller offers it unless told not to)."""

    def __init__(self) -> None:
        super().__init__()
        self._controller = Controller(self._collector, hostname=self.host, port=self.port, enable_SMTPUTF8=False)


@pytest.fixture
def login_server() -> Iterator[LoginServer]:
    server = LoginServer()
    server.start()
    yield server
    server.stop()


def running(handler: RefusingHandler) -> Controller:
    controller = Controller(handler, hostname='127.0.0.1', port=free_port())
    controller.start()
    return controller


def settings_for(monkeypatch: pytest.MonkeyPatch, host: str, port: int, **env: str) -> config.Settings:
    point_settings_at(monkeypatch, host, port, timeout=2)
    for name, value in env.items():
        monkeypatch.setenv(f'CXT_{name.upper()}', value)
    return config.load_settings()


def test_logs_in_with_the_configured_account_and_sends_as_it(
    login_server: LoginServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings_for(monkeypatch, login_server.host, login_server.port, smtp_user=USER, smtp_password=PASSWORD)
    monkeypatch.delenv('CXT_MAIL_FROM')  # the account is the sender

    mail.send_email(MESSAGE, settings=config.load_settings())

    (received,) = login_server.wait_for(1)
    assert login_server.logins == [USER]
    assert (received.sender, received.recipients) == (USER, ['grace@example.com'])
    assert received.message['From'] == f'CX Toolbox <{USER}>'


def test_a_wrong_password_is_a_refused_login_for_the_account(
    login_server: LoginServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(
        monkeypatch, login_server.host, login_server.port, smtp_user=USER, smtp_password='expired-password'
    )

    with pytest.raises(ExternalServiceError) as raised:
        mail.send_email(MESSAGE, settings=settings)

    assert str(raised.value) == f'The mail server 127.0.0.1:{login_server.port} refused the login for {USER}'
    assert 'expired-password' not in str(raised.value)
    assert login_server.messages == []


def test_without_a_sender_or_login_mail_comes_from_no_reply_at_the_dashboard_host(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings_for(monkeypatch, smtp_server.host, smtp_server.port, public_url='https://support.acme.example/')
    monkeypatch.delenv('CXT_MAIL_FROM')

    mail.send_email(MESSAGE, settings=config.load_settings())

    (received,) = smtp_server.wait_for(1)
    assert received.sender == 'no-reply@support.acme.example'
    assert received.message['From'] == 'CX Toolbox <no-reply@support.acme.example>'
    assert str(received.message['Message-ID']).endswith('@support.acme.example>')


def test_starttls_configured_but_not_offered_points_at_the_setting(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(monkeypatch, smtp_server.host, smtp_server.port, smtp_security='starttls')

    with pytest.raises(ExternalServiceError, match=r'does not support STARTTLS \(check CXT_SMTP_SECURITY\)'):
        mail.send_email(MESSAGE, settings=settings)

    assert smtp_server.messages == []


def test_a_login_configured_but_not_offered_points_at_the_user_setting(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A plain relay without AUTH: the fix is CXT_SMTP_USER, not CXT_SMTP_SECURITY.
    settings = settings_for(monkeypatch, smtp_server.host, smtp_server.port, smtp_user=USER, smtp_password=PASSWORD)

    with pytest.raises(ExternalServiceError) as raised:
        mail.send_email(MESSAGE, settings=settings)

    assert str(raised.value) == (
        f'The mail server 127.0.0.1:{smtp_server.port} does not offer a login (AUTH); '
        'unset CXT_SMTP_USER or use a server that does'
    )
    assert smtp_server.messages == []


def test_implicit_tls_against_a_plain_server_is_a_tls_failure(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(monkeypatch, smtp_server.host, smtp_server.port, smtp_security='ssl')

    with pytest.raises(
        ExternalServiceError, match=rf'^TLS with the mail server 127\.0\.0\.1:{smtp_server.port} failed'
    ):
        mail.send_email(MESSAGE, settings=settings)

    assert smtp_server.messages == []


def test_a_refused_recipient_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = RefusingHandler(recipient_reply='550 5.1.1 <grace@example.com>: Recipient address rejected')
    controller = running(handler)
    try:
        settings = settings_for(monkeypatch, controller.hostname, controller.port)
        with pytest.raises(ExternalServiceError) as raised:
            mail.send_email(MESSAGE, settings=settings)
    finally:
        controller.stop()

    assert str(raised.value) == f'The mail server 127.0.0.1:{controller.port} refused the recipient grace@example.com'
    assert handler.accepted == 0


def test_a_refused_sender_shows_the_servers_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # A relay that only lets its own account send: the admin needs to see why, to fix CXT_MAIL_FROM.
    handler = RefusingHandler(sender_reply='553 5.7.1 <dashboard@example.com>: Sender address rejected: not owned')
    controller = running(handler)
    try:
        settings = settings_for(monkeypatch, controller.hostname, controller.port)
        with pytest.raises(ExternalServiceError) as raised:
            mail.send_email(MESSAGE, settings=settings)
    finally:
        controller.stop()

    assert str(raised.value) == (
        f'The mail server 127.0.0.1:{controller.port} answered 553: '
        '5.7.1 <dashboard@example.com>: Sender address rejected: not owned'
    )
    assert handler.accepted == 0


def test_an_unknown_mail_host_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(monkeypatch, 'smtp.acme.invalid', 587)

    with pytest.raises(ExternalServiceError, match=r'^Could not reach the mail server smtp\.acme\.invalid:587 \(.+\)$'):
        mail.send_email(MESSAGE, settings=settings)


@pytest.mark.parametrize(
    ('recipient', 'sender'),
    [('jürgen@example.com', 'dashboard@example.com'), ('grace@example.com', 'büro@acme.example')],
)
def test_a_non_ascii_address_goes_out_over_smtputf8(
    recipient: str,
    sender: str,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(monkeypatch, smtp_server.host, smtp_server.port, mail_from=sender)
    message = mail.Email(to=recipient, subject='Grüße von Acme', text='Willkommen, Jürgen.', html='<p>Willkommen</p>')

    mail.send_email(message, settings=settings)

    (received,) = smtp_server.wait_for(1)
    assert (received.sender, received.recipients) == (sender, [recipient])
    assert (received.message['To'], received.message['From']) == (recipient, f'CX Toolbox <{sender}>')
    assert received.subject == 'Grüße von Acme'
    assert received.text.strip() == 'Willkommen, Jürgen.'


def test_a_non_ascii_address_the_server_cannot_take_fails_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = AsciiOnlyServer().start()
    try:
        settings = settings_for(monkeypatch, server.host, server.port)
        message = mail.Email(to='jürgen@example.com', subject=MESSAGE.subject, text=MESSAGE.text, html=MESSAGE.html)
        with pytest.raises(ExternalServiceError) as raised:
            mail.send_email(message, settings=settings)
    finally:
        server.stop()

    assert str(raised.value) == (
        f'The mail server 127.0.0.1:{server.port} cannot deliver to addresses with non-ASCII characters (no SMTPUTF8)'
    )
    assert server.messages == []
    (record,) = [record for record in caplog.records if record.name == 'services.mail']
    assert record.levelname == 'WARNING'
