"""The organization's own settings: name and Kustomer subdomains."""

import re
from urllib.parse import urlsplit

from sqlalchemy import Connection, or_
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from models import AuditAction, Organization, User
from models.base import table_of
from services import events, key_cache
from services.audit import record_event
from services.errors import NotFound, ValidationFailed
from services.permissions import require_admin

KUSTOMER_SUFFIX = '.kustomerapp.com'
SUBDOMAIN_EXAMPLES = f'like acme or https://acme{KUSTOMER_SUFFIX}'
INVALID_SUBDOMAIN = f'Not a valid subdomain: use letters, digits and hyphens, {SUBDOMAIN_EXAMPLES}'
MISSING_SUBDOMAIN = f'Enter your Kustomer subdomain, {SUBDOMAIN_EXAMPLES}'
SAME_SANDBOX = 'The sandbox must differ from the organization subdomain'
_DNS_LABEL = re.compile(r'^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$')


def normalize_subdomain(raw: str | None, *, field: str = 'subdomain') -> str | None:
    """`acme`, `ACME`, `acme.kustomerapp.com`, `https://acme.kustomerapp.com/app/x` → `acme`; '' → None."""
    value = (raw or '').strip().lower()
    if not value:
        return None
    if '://' not in value:
        value = '//' + value
    try:
        host = urlsplit(value).hostname or ''
    except ValueError:
        raise ValidationFailed(INVALID_SUBDOMAIN, field=field) from None
    host = host.rstrip('.')
    if host.endswith(KUSTOMER_SUFFIX):
        host = host[: -len(KUSTOMER_SUFFIX)]
    if not _DNS_LABEL.fullmatch(host):
        raise ValidationFailed(INVALID_SUBDOMAIN, field=field)
    return host


def check_subdomains(subdomain: str | None, sandbox_subdomain: str | None) -> tuple[str, str | None]:
    """Both subdomains normalized, or one ValidationFailed naming every field that is wrong."""
    errors: dict[str, str] = {}
    normalized = sandbox = None
    try:
        normalized = normalize_subdomain(subdomain, field='subdomain')
        if normalized is None:
            errors['subdomain'] = MISSING_SUBDOMAIN
    except ValidationFailed as error:
        errors['subdomain'] = str(error)
    try:
        sandbox = normalize_subdomain(sandbox_subdomain, field='sandbox_subdomain')
        if sandbox is not None and sandbox == normalized:
            errors['sandbox_subdomain'] = SAME_SANDBOX
    except ValidationFailed as error:
        errors['sandbox_subdomain'] = str(error)
    if errors or normalized is None:
        raise ValidationFailed.for_fields(errors)
    return normalized, sandbox


def kustomer_url(subdomain: str | None) -> str | None:
    return f'https://{subdomain}{KUSTOMER_SUFFIX}' if subdomain else None


def lock_organization(*, session: Session, organization_id: int) -> None:
    """Serialize changes to one organization's keys, team and settings (a row lock on PostgreSQL; on SQLite the
    transaction's BEGIN IMMEDIATE already serializes writers). FOR NO KEY UPDATE: rows that merely point at the
    organization (an audit event of a sign-in) are written meanwhile without waiting."""
    statement = select(Organization.id).where(Organization.id == organization_id).with_for_update(key_share=True)
    if session.exec(statement).first() is None:
        raise NotFound('Organization not found.')


def get_organization(*, session: Session, actor: User) -> Organization:
    """The actor's own organization."""
    organization = session.get(Organization, actor.organization_id)
    if organization is None:
        raise NotFound('Organization not found.')
    return organization


def update_subdomains(
    *,
    session: Session,
    actor: User,
    subdomain: str | None,
    sandbox_subdomain: str | None,
    ip: str | None = None,
) -> Organization:
    """Save the Kustomer subdomains (admins only); nothing is saved when either value is invalid, and the refusal
    names every invalid field at once."""
    lock_organization(session=session, organization_id=actor.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor)
    normalized, sandbox = check_subdomains(subdomain, sandbox_subdomain)
    organization = get_organization(session=session, actor=actor)
    if (organization.kustomer_subdomain, organization.kustomer_sandbox_subdomain) == (normalized, sandbox):
        return organization  # nothing changed: nothing to save or record
    organization.kustomer_subdomain = normalized
    organization.kustomer_sandbox_subdomain = sandbox
    session.add(organization)
    events.publish(session=session, kind=events.EventKind.SUBDOMAINS_SAVED, organization_id=organization.id)
    key_cache.invalidate(session=session)  # the commit returns once every process's widget API shows them
    record_event(
        session=session,
        organization_id=organization.id,
        actor=actor,
        action=AuditAction.SUBDOMAINS_UPDATED,
        target=f'{normalized}, sandbox: {sandbox or "none"}',
        ip=ip,
    )
    return organization


def subdomain_from_origin(origin: str | None) -> str | None:
    """`https://acme.kustomerapp.com` → `acme`; anything else → None."""
    if not origin or not origin.startswith('https://') or not origin.endswith(KUSTOMER_SUFFIX):
        return None
    label = origin[len('https://') : -len(KUSTOMER_SUFFIX)]
    return label if _DNS_LABEL.fullmatch(label) else None


_organization = table_of(Organization)


def origin_is_known(*, connection: Connection, origin: str | None) -> bool:
    """Whether some organization saved this origin's subdomain (CORS preflights carry no key)."""
    label = subdomain_from_origin(origin)
    if label is None:
        return False
    known = origin_known_from_cache(origin)
    if known is not None:
        return known
    generation = key_cache.generation()
    statement = (
        core_select(_organization.c.id)
        .where(or_(_organization.c.kustomer_subdomain == label, _organization.c.kustomer_sandbox_subdomain == label))
        .limit(1)
    )
    known = connection.execute(statement).first() is not None
    key_cache.put(('origin', label), known, generation)
    return known


def origin_known_from_cache(origin: str | None) -> bool | None:
    """`origin_is_known` from this process's cache on PostgreSQL (services/key_cache.py) without database work;
    None when the database must be asked."""
    label = subdomain_from_origin(origin)
    if label is None:
        return False
    return key_cache.get(('origin', label))
