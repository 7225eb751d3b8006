"""Security alerts by email: every admin hears when the API key is revealed, rotated or an old key revoked, when
someone becomes an admin and when an admin is removed or made a member; and about every change to how someone signs
in: an authenticator app set up or turned off, a passkey added, a second factor reset, two-factor no longer
required, a password changed or reset (what an attacker who has a password does first).

How: the audit log already records each of these changes, in the same transaction as the change. Session events
(installed when this module is imported: main.py does so for the app and the command line) notice those audit
rows as they are flushed and keep them on the session; only when the transaction commits are they handed to one
background thread, which reads the recipients and sends the mails. A rollback drops them, so nobody is told about
a change that did not happen, and a mail that fails is logged and changes nothing. Without a mail server nothing
is sent: the Activity entry is the record.

Each person can turn their alerts off on the Security page (`set_alerts_enabled`: with a recent password, audited).
"""

import html
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from models import AuditAction, AuditEvent, Organization, Role, User, UserStatus
from services import audit, mail
from services.acting import Actor
from services.audit import record_event
from services.config import Settings, current_settings
from services.db import read_scope
from services.errors import PermissionDenied
from services.permissions import require_recent_password

log = logging.getLogger(__name__)

_SESSION_KEY = 'cxt_alerts'
ALERTED_ACTIONS = frozenset(
    {
        AuditAction.API_KEY_REVEALED,
        AuditAction.API_KEY_ROTATED,
        AuditAction.API_KEY_OLD_REVOKED,
        AuditAction.MEMBER_ROLE_CHANGED,
        AuditAction.MEMBER_REMOVED,
        AuditAction.ADMIN_CREATED,
        AuditAction.INVITATION_ACCEPTED,
        AuditAction.SSO_BREAK_GLASS,
        AuditAction.TWO_FACTOR_ENABLED,
        AuditAction.TWO_FACTOR_DISABLED,
        AuditAction.TWO_FACTOR_RESET,
        AuditAction.TWO_FACTOR_NOT_REQUIRED,
        AuditAction.PASSKEY_ADDED,
        AuditAction.PASSWORD_CHANGED,
        AuditAction.PASSWORD_RESET,
    }
)


@dataclass(frozen=True)
class Alert:
    """One audited change, copied from its audit row when it was flushed."""

    organization_id: int
    action: str
    actor_email: str | None
    target: str | None
    ip: str | None
    at: datetime


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
# Noticing the changes: after the flush, handed over after the commit


def _collect(session: OrmSession, _context: Any) -> None:
    for row in session.new:
        if isinstance(row, AuditEvent) and row.action in ALERTED_ACTIONS and row.organization_id is not None:
            alert = Alert(row.organization_id, row.action, row.actor_email, row.target, row.ip, row.created_at)
            session.info.setdefault(_SESSION_KEY, []).append(alert)


def _after_commit(session: OrmSession) -> None:
    alerts: list[Alert] = session.info.pop(_SESSION_KEY, [])
    if alerts:
        dispatch(alerts)


def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_SESSION_KEY, None)


def install() -> None:
    """Listen to every session's flushes and commits (idempotent; done on import)."""
    for name, listener in (
        ('after_flush', _collect),
        ('after_commit', _after_commit),
        ('after_rollback', _after_rollback),
    ):
        if not event.contains(OrmSession, name, listener):
            event.listen(OrmSession, name, listener)


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
        try:
            with read_scope() as session:
                change = describe(session, alert)
                if change is None:
                    continue
                organization = session.get(Organization, alert.organization_id)
                recipients = _recipients(session, alert.organization_id)
                organization_name = organization.name if organization else 'your organization'
        except Exception:
            log.exception('Security alert for %s: could not read the recipients; nothing sent', alert.action)
            continue
        for recipient in recipients:
            message = alert_email(alert, change, to=recipient, organization=organization_name, settings=settings)
            try:
                mail.send_email(message, settings=settings)
            except Exception as error:  # a failed alert is logged; the change itself stays done
                log.warning('Security alert (%s) to %s not sent: %s', alert.action, recipient, error)


def _recipients(session: Session, organization_id: int) -> list[str]:
    statement = select(User.email).where(
        User.organization_id == organization_id,
        User.role == Role.ADMIN,
        User.status == UserStatus.ACTIVE,
        User.alerts_enabled == True,  # noqa: E712 (SQL, not Python)
    )
    return sorted(session.exec(statement).all())


def describe(session: Session, alert: Alert) -> _Change | None:
    """What the mail says happened, or None when the audited change is not one admins are alerted about (a role
    change to member of someone who was not an admin, the removal of a member)."""
    target = alert.target or ''
    simple: dict[str, Callable[[], _Change]] = {
        AuditAction.API_KEY_REVEALED: lambda: _Change('The API key was revealed', target),
        AuditAction.API_KEY_ROTATED: lambda: _Change('The API key was rotated', target),
        AuditAction.API_KEY_OLD_REVOKED: lambda: _Change('An old API key was revoked', target),
        AuditAction.ADMIN_CREATED: lambda: _Change(f'{target} was made an admin from the command line'),
        AuditAction.SSO_BREAK_GLASS: lambda: _Change(
            f'{target} signed in with a password while single sign-on is required'
        ),
        AuditAction.TWO_FACTOR_ENABLED: lambda: _Change(f'{target} set up an authenticator app'),
        AuditAction.TWO_FACTOR_DISABLED: lambda: _Change(f'{target} turned off their authenticator app'),
        AuditAction.TWO_FACTOR_RESET: lambda: _Change(f"{target}'s second factor was reset"),
        AuditAction.TWO_FACTOR_NOT_REQUIRED: lambda: _Change('Two-factor authentication is no longer required'),
        # Target: the passkey's name, chosen by whoever added it; the person is the actor.
        AuditAction.PASSKEY_ADDED: lambda: _Change(f'{alert.actor_email} added a passkey', target, 'Passkey'),
        AuditAction.PASSWORD_CHANGED: lambda: _Change(f'{target} changed their password'),
        AuditAction.PASSWORD_RESET: lambda: _Change(f'{target} reset their password'),
    }
    if alert.action in simple:
        return simple[alert.action]()
    if alert.action == AuditAction.MEMBER_ROLE_CHANGED:
        # Target: 'email: previous → new' (services/team/members.py).
        email, _, change = target.rpartition(': ')
        previous, _, new = change.partition(' → ')
        if new == Role.ADMIN:
            return _Change(f'{email} became an admin')
        if previous == Role.ADMIN:
            return _Change(f'{email} is no longer an admin')
        return None
    if alert.action == AuditAction.INVITATION_ACCEPTED:
        # Target: 'email (role)' (services/identity/invitations.py).
        if target.endswith(f'({Role.ADMIN})'):
            return _Change(f'{target.rpartition(" (")[0]} joined as an admin')
        return None
    if alert.action == AuditAction.MEMBER_REMOVED:
        removed = session.exec(
            select(User).where(User.organization_id == alert.organization_id, User.email == target)
        ).first()
        if removed is not None and removed.role == Role.ADMIN:
            return _Change(f'The admin {target} was removed')
        return None
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
