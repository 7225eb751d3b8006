"""services.mail against real sockets: a collecting SMTP server, a refused port, a silent and a dropping server."""

import time

import pytest

from services import config, mail
from services.errors import ExternalServiceError, NotConfigured
from tests import smtp_server as smtp
from tests.smtp_server import DroppingServer, SilentServer, SmtpServer, free_port, point_settings_at

# fixtures
smtp_server, silent_smtp_server = smtp.smtp_server, smtp.silent_smtp_server
dropping_smtp_server = smtp.dropping_smtp_server

MESSAGE = mail.Email(
    to='grace@example.com',
    subject='Hello from Acme Support',
    text='Plain words.\nhttp://dashboard.test/invite/abc',
    html='<p>Rich <b>words</b></p>',
)


def settings_for(monkeypatch: pytest.MonkeyPatch, host: str, port: int, timeout: float = 1.0) -> config.Settings:
    point_settings_at(monkeypatch, host, port, timeout=timeout)
    return config.load_settings()


def test_sends_both_parts_to_the_recipient(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(monkeypatch, smtp_server.host, smtp_server.port)
    mail.send_email(MESSAGE, settings=settings)
    (received,) = smtp_server.wait_for(1)
    assert received.recipients == ['grace@example.com']
    assert received.sender == 'dashboard@example.com'
    assert received.subject == 'Hello from Acme Support'
    assert received.content_types == ['text/plain', 'text/html']
    assert received.text.strip() == 'Plain words.\nhttp://dashboard.test/invite/abc'
    assert '<' not in received.text
    assert '<p>Rich <b>words</b></p>' in received.html


def test_without_a_mail_server_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotConfigured):
        mail.send_email(MESSAGE, settings=config.load_settings())


def test_connection_refused_is_a_readable_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    settings = settings_for(monkeypatch, '127.0.0.1', port)
    with pytest.raises(ExternalServiceError, match=f'Connection refused by the mail server 127.0.0.1:{port}'):
        mail.send_email(MESSAGE, settings=settings)


def test_a_silent_server_times_out(silent_smtp_server: SilentServer, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(monkeypatch, silent_smtp_server.host, silent_smtp_server.port, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ExternalServiceError, match=r'did not answer within 0\.5 s'):
        mail.send_email(MESSAGE, settings=settings)
    elapsed = time.monotonic() - started
    assert silent_smtp_server.accepted == 1
    # One timeout, not two: the connection is dropped without waiting for a QUIT answer that never comes.
    assert 0.4 < elapsed < 0.95


def test_a_dropped_connection_fails_at_once(
    dropping_smtp_server: DroppingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(monkeypatch, dropping_smtp_server.host, dropping_smtp_server.port)
    started = time.monotonic()
    with pytest.raises(ExternalServiceError, match='closed the connection'):
        mail.send_email(MESSAGE, settings=settings)
    # yagmail's own send() would sleep through ~18 s of retries here and then return False.
    assert time.monotonic() - started < 2


def test_only_services_mail_imports_yagmail() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    importers = [
        str(path.relative_to(root))
        for folder in ('services', 'ui', 'api', 'models')
        for path in (root / folder).rglob('*.py')
        if 'import yagmail' in path.read_text() or 'from yagmail' in path.read_text()
    ]
    assert importers == ['services/mail.py']
