"""Outgoing mail over SMTP: the only module that imports yagmail."""

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from services import metrics
from services.config import Settings, current_settings
from services.errors import ExternalServiceError, NotConfigured

if TYPE_CHECKING:
    import yagmail

log = logging.getLogger(__name__)

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: a valid certificate, for another name.
NAME_MISMATCH = frozenset({62, 64})


@dataclass(frozen=True)
class Email:
    """One message with an HTML part and a clean plain-text part."""

    to: str
    subject: str
    text: str
    html: str
    kind: str = 'other'  # the `kind` label of cxt_mail_sent_total: invitation, password_reset, alert


def send_email(message: Email, *, settings: Settings | None = None) -> None:
    """Send one message; raises ExternalServiceError with a plain reason on any failure. Blocking: call off the loop."""
    settings = settings or current_settings()
    if not settings.mail_configured:
        raise NotConfigured('No mail server is configured (set CXT_SMTP_HOST).')
    sender = sender_address(settings)
    mime = build_mime(message, sender=sender)
    server = f'{settings.smtp_host}:{settings.smtp_port}'
    try:
        _deliver(settings, sender=sender, recipient=message.to, mime=mime)
    except Exception as error:  # every failure, whatever the library raised, becomes one readable reason
        reason = describe_failure(error, server=server, settings=settings, recipient=message.to)
        log.warning('mail to %s via %s failed: %s', message.to, server, reason)
        metrics.count_mail(message.kind, sent=False)
        raise ExternalServiceError(reason) from error
    metrics.count_mail(message.kind, sent=True)


def sender_address(settings: Settings) -> str:
    if settings.sender:
        return settings.sender
    host = urlsplit(settings.resolved_public_url).hostname or 'localhost'
    return f'no-reply@{host}'


def build_mime(message: Email, *, sender: str) -> EmailMessage:
    """multipart/alternative: the plain text first, the HTML second (mail clients show the last part they can)."""
    mime = EmailMessage()
    mime['From'] = f'CX Toolbox <{sender}>'
    mime['To'] = message.to
    mime['Subject'] = message.subject
    mime['Date'] = formatdate(localtime=False)
    mime['Message-ID'] = make_msgid(domain=sender.rpartition('@')[2] or None)
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype='html')
    return mime


class MissingExtension(smtplib.SMTPNotSupportedError):
    """The mail server does not offer an SMTP extension this message needs (STARTTLS, AUTH or SMTPUTF8)."""

    def __init__(self, extension: str) -> None:
        super().__init__(f'{extension} extension not supported by server.')
        self.extension = extension


def _deliver(settings: Settings, *, sender: str, recipient: str, mime: EmailMessage) -> None:
    # yagmail opens the connection (TLS) and quits it at the end of the `with` block. The message itself is built
    # above: yagmail's own send() puts the HTML source (with <br>s) into the text part, and on a dropped connection it
    # sleeps ~18 s through three retries and then returns False. One attempt with the real error is better here: the
    # invitation stays stored and the admin can Resend.
    assert settings.smtp_host, 'send_email checks mail_configured first'
    # smtplib's own TLS context accepts any certificate, which would hand the password to a man in the middle. This one
    # checks the certificate and the host name, against the system CAs or the bundle SSL_CERT_FILE names.
    security = settings.smtp_security
    tls = ssl.create_default_context() if security != 'none' else None
    implicit_tls: dict[str, Any] = {'context': tls} if security == 'ssl' else {}  # yagmail passes it to SMTP_SSL
    import yagmail  # here, not at the top: only a send needs it, and a server that starts sends nothing yet

    client = yagmail.SMTP(
        host=settings.smtp_host,
        port=settings.smtp_port,
        smtp_ssl=security == 'ssl',
        smtp_starttls={'context': tls} if security == 'starttls' else False,  # yagmail calls starttls(**this)
        smtp_skip_login=True,  # _send logs in, once it knows that the server offers AUTH
        soft_email_validation=False,
        timeout=settings.smtp_timeout,
        **implicit_tls,
    )
    with client:
        try:
            refused = _send(_connect(client), settings=settings, sender=sender, recipient=recipient, mime=mime)
        except BaseException:
            _drop_connection(client)
            raise
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


def _connect(client: 'yagmail.SMTP') -> smtplib.SMTP:
    """Open the connection and, with starttls, upgrade it to TLS; the login comes later, in _send."""
    try:
        client.login()  # with smtp_skip_login, yagmail's login() only connects
    except smtplib.SMTPNotSupportedError as error:  # STARTTLS is the only extension this step asks for
        raise MissingExtension('STARTTLS') from error
    return client.smtp


def _send(
    connection: smtplib.SMTP, *, settings: Settings, sender: str, recipient: str, mime: EmailMessage
) -> dict[str, tuple[int, bytes]]:
    """Log in if configured and hand over the message; returns the recipients the server refused."""
    connection.ehlo_or_helo_if_needed()
    if settings.smtp_user:
        if not connection.has_extn('auth'):
            raise MissingExtension('AUTH')
        connection.login(settings.smtp_user, settings.smtp_password or '')
    if (sender + recipient).isascii():
        return connection.sendmail(sender, [recipient], mime.as_string())
    # A non-ASCII mailbox travels as UTF-8 in the envelope and the headers, which the server must agree to (RFC 6531).
    if not connection.has_extn('smtputf8'):
        raise MissingExtension('SMTPUTF8')
    payload = mime.as_bytes(policy=policy.SMTPUTF8)
    return connection.sendmail(sender, [recipient], payload, mail_options=['SMTPUTF8', 'BODY=8BITMIME'])


def _drop_connection(client: 'yagmail.SMTP') -> None:
    """Close the socket without QUIT: after a timeout, a polite QUIT would wait for the same silent server again."""
    connection = client.smtp
    client.is_closed = True
    if connection is not None:
        connection.close()


def describe_failure(error: BaseException, *, server: str, settings: Settings, recipient: str) -> str:
    """A short, user-safe reason for a failed send, judged by the exception's class and the server's reply code."""
    reason = (
        _connection_reason(error, server=server, settings=settings)
        or _smtp_reason(error, server=server, settings=settings, recipient=recipient)
        or _transport_reason(error, server=server, host=settings.smtp_host or '')
    )
    return reason or f'Sending through the mail server {server} failed ({type(error).__name__}: {error})'[:500]


def _connection_reason(error: BaseException, *, server: str, settings: Settings) -> str | None:
    if isinstance(error, ConnectionRefusedError):
        return f'Connection refused by the mail server {server}'
    # smtplib turns a read timeout into SMTPServerDisconnected; the timeout is still its context.
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return f'The mail server {server} did not answer within {settings.smtp_timeout:g} s'
    return None


# What a missing extension means for the person setting the server up; any other: the security setting is wrong.
_MISSING_EXTENSIONS = {
    'AUTH': 'The mail server {server} does not offer a login (AUTH); unset CXT_SMTP_USER or use a server that does',
    'SMTPUTF8': 'The mail server {server} cannot deliver to addresses with non-ASCII characters (no SMTPUTF8)',
}


def _smtp_reason(error: BaseException, *, server: str, settings: Settings, recipient: str) -> str | None:
    # smtplib's errors are OSErrors: they are judged before the plain network ones.
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f'The mail server {server} closed the connection'
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f'The mail server {server} refused the login for {settings.smtp_user}'
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return f'The mail server {server} refused the recipient {recipient}'
    if isinstance(error, MissingExtension):
        default = 'The mail server {server} does not support {extension} (check CXT_SMTP_SECURITY)'
        return _MISSING_EXTENSIONS.get(error.extension, default).format(server=server, extension=error.extension)
    if isinstance(error, smtplib.SMTPResponseException):
        detail = error.smtp_error.decode(errors='replace') if isinstance(error.smtp_error, bytes) else error.smtp_error
        return f'The mail server {server} answered {error.smtp_code}: {detail}'[:500]
    return None


def _transport_reason(error: BaseException, *, server: str, host: str) -> str | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        return _untrusted_certificate(error, server=server, host=host)
    if isinstance(error, ssl.SSLError):
        return f'TLS with the mail server {server} failed ({error.reason or error})'
    if isinstance(error, OSError):
        return f'Could not reach the mail server {server} ({error.strerror or error})'
    return None


def _untrusted_certificate(error: ssl.SSLCertVerificationError, *, server: str, host: str) -> str:
    detail = 'certificate verify failed: ' + (error.verify_message or error.reason or '').rstrip('.')
    if error.verify_code in NAME_MISMATCH:
        return (
            f"The mail server {server}'s certificate is not valid for {host} ({detail}). "
            'Set CXT_SMTP_HOST to a name the certificate was issued for.'
        )
    return (
        f"The mail server {server}'s certificate is not trusted ({detail}). "
        'Use a certificate from a trusted authority, or point SSL_CERT_FILE at your CA bundle.'
    )
