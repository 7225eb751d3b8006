"""The SMTP password only goes to a mail server whose certificate checks out: real aiosmtpd servers on 127.0.0.1
speaking STARTTLS or implicit TLS with a certificate made here, trusted only when SSL_CERT_FILE names it."""

import ipaddress
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services import config, mail
from services.errors import ExternalServiceError
from tests.smtp_server import SmtpServer, point_settings_at

USER = 'mailer@acme.example'
PASSWORD = 'app-password-1'
MESSAGE = mail.Email(
    to='grace@example.com',
    subject='You are invited to Acme Support',
    text='Join us: http://dashboard.test/invite/abc',
    html='<p>Join us</p>',
)


def self_signed_certificate(directory: Path, *, names: list[x509.GeneralName]) -> tuple[Path, Path]:
    """A fresh key and a self-signed certificate for `names`, as PEM files: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'CX Toolbox test mail server')])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # A self-signed certificate is its own authority: strict OpenSSL settings want it to say so.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / 'mail-server.crt', directory / 'mail-server.key'
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


class TlsLoginServer(SmtpServer):
    """A collecting SMTP server behind TLS (STARTTLS or implicit) that offers AUTH only inside TLS and records every
    login attempt; it accepts only USER with PASSWORD."""

    def __init__(self, *, security: str, certificate: Path, key: Path) -> None:
        super().__init__()
        self.certificate = certificate
        self.logins: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        tls: dict[str, Any] = (
            {'tls_context': context, 'require_starttls': True}
            if security == 'starttls'
            # aiosmtpd only counts STARTTLS as encryption; on an implicit TLS port everything already is.
            else {'ssl_context': context, 'auth_require_tls': False}
        )
        self._controller = Controller(
            self._collector, hostname=self.host, port=self.port, authenticator=self._authenticate, **tls
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append(data.login.decode())
        valid = (data.login.decode(), data.password.decode()) == (USER, PASSWORD)
        return AuthResult(success=valid, handled=False)


IP_127 = x509.IPAddress(ipaddress.ip_address('127.0.0.1'))


@pytest.fixture(params=['starttls', 'ssl'])
def tls_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TlsLoginServer]:
    certificate, key = self_signed_certificate(tmp_path, names=[IP_127, x509.DNSName('localhost')])
    server = TlsLoginServer(security=request.param, certificate=certificate, key=key)
    server.start()
    yield server
    server.stop()


def settings_for(monkeypatch: pytest.MonkeyPatch, server: SmtpServer, security: str) -> config.Settings:
    point_settings_at(monkeypatch, server.host, server.port, timeout=2)
    monkeypatch.setenv('CXT_SMTP_SECURITY', security)
    monkeypatch.setenv('CXT_SMTP_USER', USER)
    monkeypatch.setenv('CXT_SMTP_PASSWORD', PASSWORD)
    return config.load_settings()


def security_of(request: pytest.FixtureRequest) -> str:
    return request.node.callspec.params['tls_server']


def test_an_untrusted_certificate_is_refused_before_the_password_is_sent(
    tls_server: TlsLoginServer,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(monkeypatch, tls_server, security_of(request))

    with pytest.raises(ExternalServiceError) as raised:
        mail.send_email(MESSAGE, settings=settings)

    assert str(raised.value) == (
        f"The mail server 127.0.0.1:{tls_server.port}'s certificate is not trusted "
        '(certificate verify failed: self-signed certificate). '
        'Use a certificate from a trusted authority, or point SSL_CERT_FILE at your CA bundle.'
    )
    assert tls_server.logins == []  # no AUTH: a man in the middle learns nothing
    assert tls_server.messages == []
    assert [record.levelname for record in caplog.records if record.name == 'services.mail'] == ['WARNING']


def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(
    tls_server: TlsLoginServer,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An operator with a private CA points the standard OpenSSL variable at it; no setting of ours is involved.
    monkeypatch.setenv('SSL_CERT_FILE', str(tls_server.certificate))
    settings = settings_for(monkeypatch, tls_server, security_of(request))

    mail.send_email(MESSAGE, settings=settings)

    (received,) = tls_server.wait_for(1)
    assert tls_server.logins == [USER]
    assert received.recipients == ['grace@example.com']


@pytest.mark.parametrize('security', ['starttls', 'ssl'])
def test_a_trusted_certificate_for_another_name_is_refused(
    security: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Trusting a certificate is not enough: it must be for the host dialled, or any trusted site could listen in.
    certificate, key = self_signed_certificate(tmp_path, names=[x509.DNSName('smtp.acme.example')])
    server = TlsLoginServer(security=security, certificate=certificate, key=key)
    server.start()
    try:
        monkeypatch.setenv('SSL_CERT_FILE', str(certificate))
        settings = settings_for(monkeypatch, server, security)
        with pytest.raises(ExternalServiceError) as raised:
            mail.send_email(MESSAGE, settings=settings)
    finally:
        server.stop()

    assert str(raised.value) == (
        f"The mail server 127.0.0.1:{server.port}'s certificate is not valid for 127.0.0.1 "
        "(certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'). "
        'Set CXT_SMTP_HOST to a name the certificate was issued for.'
    )
    assert server.logins == []
    assert server.messages == []
