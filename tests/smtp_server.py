"""Real SMTP endpoints on 127.0.0.1 for tests: a collecting aiosmtpd server and three broken ones.

Import the fixtures into a conftest or test module (`from tests.smtp_server import smtp_server, ...`), or use the
classes directly (the browser suite starts them around a server process).
"""

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

LINK_PATTERN = re.compile(r'https?://[^\s"<>]+/(?:invite|reset-password)/[A-Za-z0-9_-]+')


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message['Subject'])

    @property
    def text(self) -> str:
        return self._part('plain')

    @property
    def html(self) -> str:
        return self._part('html')

    @property
    def content_types(self) -> list[str]:
        return [part.get_content_type() for part in self.message.walk() if not part.is_multipart()]

    @property
    def links(self) -> list[str]:
        return LINK_PATTERN.findall(self.text)

    def _part(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None or part.get_content_subtype() != subtype:
            raise AssertionError(f'the mail has no text/{subtype} part: {self.content_types}')
        return part.get_content().replace('\r\n', '\n')


@dataclass
class _Collector:
    received: list[ReceivedMail] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        # The controller keeps the default decode_data=False, and DATA only comes after MAIL FROM.
        assert isinstance(content, bytes) and envelope.mail_from is not None
        message = message_from_bytes(content, policy=policy.default)
        with self.arrived:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
            self.arrived.notify_all()
        return '250 Message accepted for delivery'


class SmtpServer:
    """A real SMTP server collecting every message it accepts."""

    def __init__(self) -> None:
        self.host = '127.0.0.1'
        self.port = free_port()
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname=self.host, port=self.port)

    def start(self) -> 'SmtpServer':
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[ReceivedMail]:
        return list(self._collector.received)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until `count` messages arrived; returns them all."""
        with self._collector.arrived:
            ok = self._collector.arrived.wait_for(lambda: len(self._collector.received) >= count, timeout)
        if not ok:
            raise AssertionError(f'expected {count} mail(s) within {timeout} s, got {len(self._collector.received)}')
        return self.messages


class SilentServer:
    """Accepts connections and never says a word (an SMTP greeting never comes)."""

    def __init__(self, *, drop: bool = False) -> None:
        self.drop = drop
        self.host = '127.0.0.1'
        self._socket = socket.create_server((self.host, 0))
        self.port = self._socket.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.accepted = 0

    def start(self) -> Self:
        self._socket.settimeout(0.1)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.drop:
                connection.close()
            else:
                self._connections.append(connection)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        for connection in self._connections:
            connection.close()
        self._socket.close()


class DroppingServer(SilentServer):
    """Accepts each connection and closes it at once."""

    def __init__(self) -> None:
        super().__init__(drop=True)


def free_port() -> int:
    """A port nothing listens on (bound and released at once): connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def point_settings_at(monkeypatch: pytest.MonkeyPatch, host: str, port: int, *, timeout: float = 2.0) -> None:
    """Environment for a plain local SMTP server (main.py and config.load_settings() read it)."""
    monkeypatch.setenv('CXT_SMTP_HOST', host)
    monkeypatch.setenv('CXT_SMTP_PORT', str(port))
    monkeypatch.setenv('CXT_SMTP_SECURITY', 'none')
    monkeypatch.setenv('CXT_SMTP_TIMEOUT', str(timeout))
    monkeypatch.setenv('CXT_MAIL_FROM', 'dashboard@example.com')
    monkeypatch.setenv('CXT_PUBLIC_URL', 'http://dashboard.test')


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def silent_smtp_server() -> Iterator[SilentServer]:
    server = SilentServer().start()
    yield server
    server.stop()


@pytest.fixture
def dropping_smtp_server() -> Iterator[DroppingServer]:
    server = DroppingServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_env(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    """Settings pointing at the collecting server; request it before `user` or `database`."""
    point_settings_at(monkeypatch, smtp_server.host, smtp_server.port)
    return smtp_server
