"""Security alerts by email: every admin hears when the API key is revealed, rotated or an old key revoked, when
someone becomes an admin and when an admin is removed or made a member; and about every change to how someone signs
in: an authenticator app set up or turned off, a passkey added, a second factor reset, two-factor no longer
required, a password changed or reset (what an attacker who has a password does first).

How: each of these changes is a typed event on the bus (`services/bus.py`), emitted with its audit row in the same
transaction. The bus hands it to `_on_committed` only once that transaction commits, and the mail goes out on one
background thread, which reads the recipients and sends. A rollback delivers nothing, so nobody is told about a
change that did not happen, and a mail that fails is logged and changes nothing. The mail is worded from the event's
own fields (a role change's previous and new role), never from the audit row's text. Without a mail server nothing
is sent: the Activity entry is the record. Subscribed when this module is imported (main.py does so for the app and
the command line).

Each person can turn their alerts off on the Security page (`set_alerts_enabled`: with a recent password, audited).
"""

import html
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlmodel import Session, select

from models import AuditAction, Organization, Role, User, UserStatus
from services import audit, bus, mail
from services.acting import Actor
from services.audit import record_event
from services.config import Settings, current_settings
from services.db import read_scope
from services.errors import PermissionDenied
from services.permissions import require_recent_password

log = logging.getLogger(__name__)

Alert = bus.Audited  # an audited change admins may be told about


# ---------------------------------------------------------------------------------------------------------------
# Preferences


def set_alerts_enabled(*, session: Session, actor: Actor, enabled: bool) -> User:
    """Turn the actor's own alert emails on or off (a recent password: whoever holds only a session cannot silence
    them); audited."""
    require_recent_password(session=session, actor=actor)
    me = session.get(User, actor.user.id)
    if me is None or me.status != UserStatus.ACTIVE:
        raise PermissionDenied('Sign in again to change your alerts.')
    if me.alerts_enabled == enabled:
        return me
    me.alerts_enabled = enabled
    session.add(me)
    record_event(
        session=session,
        organization_id=me.organization_id,
        actor=me,
        action=AuditAction.ALERTS_TURNED_ON if enabled else AuditAction.ALERTS_TURNED_OFF,
        target=me.email,
        ip=actor.ip,
    )
    return me


def alerts_enabled(*, session: Session, actor: User) -> bool:
    me = session.get(User, actor.id)
    return bool(me and me.alerts_enabled)


# ---------------------------------------------------------------------------------------------------------------
# Hearing of the changes: from the bus, after the commit


def _on_committed(event: bus.Event) -> None:
    if isinstance(event, bus.Audited) and event.organization_id is not None and describe(event) is not None:
        dispatch([event])


def install() -> None:
    """Hear of every committed change (idempotent; done on import)."""
    bus.subscribe(_on_committed)


# ---------------------------------------------------------------------------------------------------------------
# Sending, on one background thread

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix='alerts')


def dispatch(alerts: list[Alert]) -> Future[None] | None:
    """Send the mails for committed changes on the alert thread; None when no mail server is configured."""
    try:
        settings = current_settings()
    except RuntimeError:
        return None
    if not settings.mail_configured:
        return None
    return _worker.submit(_send_all, alerts, settings)


def wait_until_sent(timeout: float = 30.0) -> None:
    """Block until every alert handed over so far has been sent or has failed (for tests and shutdown)."""
    _worker.submit(lambda: None).result(timeout=timeout)


@dataclass(frozen=True)
class _Change:
    subject: str  # what happened, as a sentence without the organization
    detail: str | None = None
    detail_label: str = 'Key'


def _send_all(alerts: list[Alert], settings: Settings) -> None:
    for alert in alerts:
        change = describe(alert)
        if change is None or alert.organization_id is None:
            continue
        action = alert.entry()[0]
        try:
            with read_scope() as session:
                organization = session.get(Organization, alert.organization_id)
                recipients = _recipients(session, alert.organization_id)
                organization_name = organization.name if organization else 'your organization'
        except Exception:
            log.exception('Security alert for %s: could not read the recipients; nothing sent', action)
            continue
        for recipient in recipients:
            message = alert_email(alert, change, to=recipient, organization=organization_name, settings=settings)
            try:
                mail.send_email(message, settings=settings)
            except Exception as error:  # a failed alert is logged; the change itself stays done
                log.warning('Security alert (%s) to %s not sent: %s', action, recipient, error)


def _recipients(session: Session, organization_id: int) -> list[str]:
    statement = select(User.email).where(
        User.organization_id == organization_id,
        User.role == Role.ADMIN,
        User.status == UserStatus.ACTIVE,
        User.alerts_enabled == True,  # noqa: E712 (SQL, not Python)
    )
    return sorted(session.exec(statement).all())


# What the mail says for each audited action whose target is the person or the key concerned.
_SAID: dict[AuditAction, Callable[[str], _Change]] = {
    AuditAction.API_KEY_REVEALED: lambda key: _Change('The API key was revealed', key),
    AuditAction.API_KEY_ROTATED: lambda key: _Change('The API key was rotated', key),
    AuditAction.API_KEY_OLD_REVOKED: lambda key: _Change('An old API key was revoked', key),
    AuditAction.ADMIN_CREATED: lambda email: _Change(f'{email} was made an admin from the command line'),
    AuditAction.SSO_BREAK_GLASS: lambda email: _Change(
        f'{email} signed in with a password while single sign-on is required'
    ),
    AuditAction.TWO_FACTOR_ENABLED: lambda email: _Change(f'{email} set up an authenticator app'),
    AuditAction.TWO_FACTOR_DISABLED: lambda email: _Change(f'{email} turned off their authenticator app'),
    AuditAction.TWO_FACTOR_RESET: lambda email: _Change(f"{email}'s second factor was reset"),
    AuditAction.TWO_FACTOR_NOT_REQUIRED: lambda _: _Change('Two-factor authentication is no longer required'),
    AuditAction.PASSWORD_CHANGED: lambda email: _Change(f'{email} changed their password'),
    AuditAction.PASSWORD_RESET: lambda email: _Change(f'{email} reset their password'),
}


def describe(alert: Alert) -> _Change | None:
    """What the mail says happened, or None when the change is not one admins are alerted about (a role change to
    member of someone who was not an admin, the removal of a member)."""
    if isinstance(alert, bus.RoleChanged):
        return _role_change(alert)
    if isinstance(alert, bus.InvitationAccepted):
        return _Change(f'{alert.email} joined as an admin') if alert.role == Role.ADMIN else None
    if isinstance(alert, bus.MemberRemoved):
        return _Change(f'The admin {alert.email} was removed') if alert.role == Role.ADMIN else None
    if not isinstance(alert, bus.Recorded):
        return None
    if alert.action == AuditAction.PASSKEY_ADDED:
        # Target: the passkey's name, chosen by whoever added it; the person is the actor.
        return _Change(f'{alert.actor_email} added a passkey', alert.target, 'Passkey')
    said = _SAID.get(alert.action)
    return said(alert.target or '') if said is not None else None


def _role_change(change: bus.RoleChanged) -> _Change | None:
    if change.new == Role.ADMIN:
        return _Change(f'{change.email} became an admin')
    if change.previous == Role.ADMIN:
        return _Change(f'{change.email} is no longer an admin')
    return None


def alert_email(alert: Alert, change: _Change, *, to: str, organization: str, settings: Settings) -> mail.Email:
    """Who, when, from which address, and where to look (the Activity tab)."""
    base = settings.resolved_public_url
    activity = f'{base}/?tab=activity'
    security = f'{base}/security'
    when = alert.at.strftime('%Y-%m-%d %H:%M:%S UTC')
    facts = [
        ('Who', alert.actor_email or 'unknown'),
        ('When', when),
        ('From', alert.ip or ('the server itself' if alert.actor_email == audit.OPERATOR else 'unknown address')),
    ]
    if change.detail:
        facts.append((change.detail_label, change.detail))
    text = (
        f'{change.subject} in {organization} on the CX Toolbox Dashboard.\n\n'
        + ''.join(f'{label}: {value}\n' for label, value in facts)
        + f'\nSee the Activity tab: {activity}\n\n'
        'If you did not expect this, check Activity and rotate the API key if it may be in the wrong hands.\n'
        f'You get this email because you are an admin of {organization}. Turn security alerts off under '
        f'Security: {security}\n'
    )
    e = html.escape
    rows = ''.join(f'<tr><th align="left">{e(label)}</th><td>{e(value)}</td></tr>' for label, value in facts)
    body = (
        f'<p><strong>{e(change.subject)}</strong> in {e(organization)} on the CX Toolbox Dashboard.</p>'
        f'<table>{rows}</table>'
        f'<p><a href="{e(activity)}">See the Activity tab</a></p>'
        '<p>If you did not expect this, check Activity and rotate the API key if it may be in the wrong hands.</p>'
        f'<p>You get this email because you are an admin of {e(organization)}. '
        f'<a href="{e(security)}">Turn security alerts off under Security</a>.</p>'
    )
    return mail.Email(
        to=to,
        subject=f'Security alert: {change.subject} ({organization})',
        text=text,
        html=f'<html><body>{body}</body></html>',
        kind='alert',
    )


install()
