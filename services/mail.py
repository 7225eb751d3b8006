"""Outgoing mail over SMTP: the only module that imports yagmail."""

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

import yagmail

from services.config import Settings, current_settings
from services.errors import ExternalServiceError, NotConfigured

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Email:
    """One message with an HTML part and a clean plain-text part."""

    to: str
    subject: str
    text: str
    html: str


def send_email(message: Email, *, settings: Settings | None = None) -> None:
    """Send one message; raises ExternalServiceError with a plain reason on any failure. Blocking: call off the loop."""
    settings = settings or current_settings()
    if not settings.mail_configured:
        raise NotConfigured('No mail server is configured (set CXT_SMTP_HOST).')
    sender = sender_address(settings)
    mime = build_mime(message, sender=sender)
    server = f'{settings.smtp_host}:{settings.smtp_port}'
    try:
        _deliver(settings, sender=sender, recipient=message.to, payload=mime.as_string())
    except Exception as error:  # every failure, whatever the library raised, becomes one readable reason
        reason = describe_failure(error, server=server, settings=settings, recipient=message.to)
        log.warning('mail to %s via %s failed: %s', message.to, server, reason)
        raise ExternalServiceError(reason) from error


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


def _deliver(settings: Settings, *, sender: str, recipient: str, payload: str) -> None:
    # yagmail opens the connection (TLS, login) and quits it at the end of the `with` block. The message itself is
    # built above: yagmail's own send() puts the HTML source (with <br>s) into the text part, and on a dropped
    # connection it sleeps ~18 s through three retries and then returns False. One attempt with the real error is
    # better here: the invitation stays stored and the admin can Resend.
    assert settings.smtp_host, 'send_email checks mail_configured first'
    client = yagmail.SMTP(
        user=settings.smtp_user or None,
        password=settings.smtp_password or '',
        host=settings.smtp_host,
        port=settings.smtp_port,
        smtp_ssl=settings.smtp_security == 'ssl',
        smtp_starttls=settings.smtp_security == 'starttls',
        smtp_skip_login=not settings.smtp_user,
        soft_email_validation=False,
        timeout=settings.smtp_timeout,
    )
    with client:
        try:
            client.login()
            refused = client.smtp.sendmail(sender, [recipient], payload)
        except BaseException:
            _drop_connection(client)
            raise
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


def _drop_connection(client: yagmail.SMTP) -> None:
    """Close the socket without QUIT: after a timeout, a polite QUIT would wait for the same silent server again."""
    connection = client.smtp
    client.is_closed = True
    if connection is not None:
        connection.close()


def describe_failure(error: BaseException, *, server: str, settings: Settings, recipient: str) -> str:
    """A short, user-safe reason for a failed send."""
    if isinstance(error, ConnectionRefusedError):
        return f'Connection refused by the mail server {server}'
    # smtplib turns a read timeout into SMTPServerDisconnected; the timeout is still its context.
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return f'The mail server {server} did not answer within {settings.smtp_timeout:g} s'
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f'The mail server {server} closed the connection'
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f'The mail server {server} refused the login for {settings.smtp_user}'
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return f'The mail server {server} refused the recipient {recipient}'
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return f'The mail server {server} does not support STARTTLS (check CXT_SMTP_SECURITY)'
    if isinstance(error, smtplib.SMTPResponseException):
        detail = error.smtp_error.decode(errors='replace') if isinstance(error.smtp_error, bytes) else error.smtp_error
        return f'The mail server {server} answered {error.smtp_code}: {detail}'[:500]
    if isinstance(error, ssl.SSLError):
        return f'TLS with the mail server {server} failed ({error.reason or error})'
    if isinstance(error, OSError):
        return f'Could not reach the mail server {server} ({error.strerror or error})'
    return f'Sending through the mail server {server} failed ({type(error).__name__}: {error})'[:500]
