"""The organization's one widget API key: generate, reveal, rotate with an optional grace window, verify."""

import logging
import secrets
import string
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, col, select

from models import ApiKey, AuditAction, Organization, User
from models.base import table_of, utcnow
from services import crypto, events, key_cache
from services.acting import Actor
from services.audit import record_event
from services.db import change_marker, without_lock_wait
from services.errors import NotFound, ValidationFailed
from services.permissions import require_admin, require_recent_password
from services.team.organizations import lock_organization

log = logging.getLogger(__name__)

PREFIX = 'cxt_'
RANDOM_LENGTH = 40
ALPHABET = string.ascii_letters + string.digits
MASK_DOTS = 16
GRACE_CHOICES = {
    'Immediately': timedelta(0),
    'In 1 hour': timedelta(hours=1),
    'In 24 hours': timedelta(hours=24),
    'In 7 days': timedelta(days=7),
}
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyOverview:
    """What Step 1 shows: the active key's mask and any old keys still inside their grace window."""

    active: ApiKey | None
    in_grace: list[ApiKey]

    @property
    def masked(self) -> str:
        return mask(self.active.last4) if self.active else ''


def mask(last4: str) -> str:
    return PREFIX + '•' * MASK_DOTS + last4


def new_plaintext_key() -> str:
    return PREFIX + ''.join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))


def hash_key(key: str) -> str:
    return crypto.sha256_hex(key)


def get_overview(*, session: Session, actor: User) -> KeyOverview:
    """The actor's organization's keys (any role may see the mask)."""
    now = utcnow()
    keys = session.exec(
        select(ApiKey)
        .where(ApiKey.organization_id == actor.organization_id)
        .where((col(ApiKey.expires_at).is_(None)) | (col(ApiKey.expires_at) > now))
        .order_by(col(ApiKey.created_at).desc())
    ).all()
    active = next((key for key in keys if key.expires_at is None), None)
    return KeyOverview(active=active, in_grace=[key for key in keys if key.expires_at is not None])


def generate_key(*, session: Session, actor: User, ip: str | None = None) -> str:
    """The organization's first key, returned in plain text once; refused if a key already exists."""
    lock_organization(session=session, organization_id=actor.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor)
    if _active_key(session=session, organization_id=actor.organization_id) is not None:
        raise ValidationFailed('This organization already has an API key. Rotate it instead.')
    plaintext = _add_key(session=session, actor=actor)
    record_event(
        session=session, organization_id=actor.organization_id, actor=actor, action=AuditAction.API_KEY_GENERATED, ip=ip
    )
    return plaintext


def reveal_key(*, session: Session, actor: Actor) -> str:
    """The active key in plain text (admins, recent password); every reveal is audited."""
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    key = _active_key(session=session, organization_id=actor.user.organization_id)
    if key is None:
        raise NotFound('There is no API key yet. Generate one first.')
    record_event(
        session=session,
        organization_id=actor.user.organization_id,
        actor=actor.user,
        action=AuditAction.API_KEY_REVEALED,
        target=mask(key.last4),
        ip=actor.ip,
    )
    return crypto.decrypt(key.encrypted_key)


def rotate_key(*, session: Session, actor: Actor, grace: timedelta) -> str:
    """Replace the active key; the old one stops now or at the end of `grace`. Returns the new key."""
    lock_organization(session=session, organization_id=actor.user.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    if grace not in GRACE_CHOICES.values():
        raise ValidationFailed('Choose when the old key stops working.')
    now = utcnow()
    old = _active_key(session=session, organization_id=actor.user.organization_id)
    if old is not None:
        old.expires_at = now + grace
        session.add(old)
        session.flush()
    plaintext = _add_key(session=session, actor=actor.user)
    grace_text = 'immediately' if not grace else f'old key valid until {(now + grace).isoformat(timespec="minutes")}'
    record_event(
        session=session,
        organization_id=actor.user.organization_id,
        actor=actor.user,
        action=AuditAction.API_KEY_ROTATED,
        target=f'{mask(old.last4) if old else "none"} → {mask(plaintext[-4:])} ({grace_text})',
        ip=actor.ip,
    )
    return plaintext


def revoke_old_key(*, session: Session, actor: Actor, key_id: int) -> ApiKey:
    """End one old key's grace window now (each grace notice revokes its own key; admins, recent password); returns
    the key."""
    lock_organization(session=session, organization_id=actor.user.organization_id)  # first: the role checked is current
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    key = session.get(ApiKey, key_id)
    now = utcnow()
    if key is None or key.organization_id != actor.user.organization_id or key.expires_at is None:
        raise NotFound('That key is not an old key of your organization.')
    if key.expires_at <= now:
        raise ValidationFailed(f'The old key {mask(key.last4)} has already stopped working.')
    key.expires_at = now
    session.add(key)
    events.publish(session=session, kind=events.EventKind.KEY_CHANGED, organization_id=actor.user.organization_id)
    key_cache.invalidate(session=session)  # the commit returns once no process accepts the old key
    record_event(
        session=session,
        organization_id=actor.user.organization_id,
        actor=actor.user,
        action=AuditAction.API_KEY_OLD_REVOKED,
        target=mask(key.last4),
        ip=actor.ip,
    )
    return key


@dataclass(frozen=True)
class VerifiedKey:
    """What the widget API answers with: the key's organization and its Kustomer subdomains."""

    organization_id: int
    organization_name: str
    subdomain: str | None
    sandbox_subdomain: str | None
    in_grace: bool = False  # an old key inside its rotation grace window (counted as `grace` in the metrics)


_api_key = table_of(ApiKey)
_organization = table_of(Organization)
# Prebuilt once: the widget API's hot path is one indexed lookup on a pooled connection, no ORM session.
_VERIFY_STATEMENT = (
    core_select(
        _api_key.c.id,
        _api_key.c.expires_at,
        _api_key.c.last_used_at,
        _organization.c.id,
        _organization.c.name,
        _organization.c.kustomer_subdomain,
        _organization.c.kustomer_sandbox_subdomain,
    )
    .select_from(_api_key.join(_organization, _api_key.c.organization_id == _organization.c.id))
    .where(_api_key.c.key_hash == bindparam('key_hash'))
)
_TOUCH_STATEMENT = update(_api_key).where(_api_key.c.id == bindparam('key_id')).values(last_used_at=bindparam('now'))
_MAX_KEY_LENGTH = 200
# Lookups cached per connection, only where the database offers a change marker (services.db.change_marker): the
# cache is dropped as soon as any other connection commits, so a rotated-away key is refused on the very next
# request; expiry is checked against the clock on every request, hit or miss.
_CACHE_INFO_KEY = 'cxt_verified_keys'
_CACHE_LIMIT = 1024
# Keys whose last-used write failed (not a busy SQLite: e.g. a read-only PostgreSQL), with when to try again.
_touch_failed: dict[int, datetime] = {}


@dataclass
class _KeyLookup:
    key_id: int
    expires_at: datetime | None
    last_used_at: datetime | None
    verified: VerifiedKey  # frozen, so a cache hit hands out the same object instead of building one


class Miss:
    """What `verify_from_cache` answers when it cannot answer without the database."""


MISS = Miss()


def verify_from_cache(
    *, key: str | None, now: datetime | None = None, count: Callable[[int, bool, datetime], None] | None = None
) -> VerifiedKey | Miss | None:
    """On PostgreSQL, the answer from this process's cache (`services.key_cache`) without any database work: the
    organization, or None for a refused key; `MISS` when the database must be asked (not cached, the cache is not
    trusted now, or the key's once-a-minute last-used write is due). Same arguments as `verify_key`."""
    if not key or len(key) > _MAX_KEY_LENGTH or not key.startswith(PREFIX):
        return None
    if not key_cache.fresh():
        return MISS  # SQLite, or the cache is not trusted now: no hashing twice
    lookup = key_cache.get(hash_key(key))
    if lookup is None:
        return MISS
    if now is None:
        now = utcnow()
    if _touch_due(lookup, now) and not (lookup.expires_at is not None and lookup.expires_at <= now):
        return MISS
    return _judge(lookup, now, count)


def verify_key(
    *,
    connection: Connection,
    key: str | None,
    now: datetime | None = None,
    count: Callable[[int, bool, datetime], None] | None = None,
) -> VerifiedKey | None:
    """The organization a presented key belongs to, or None for a missing, unknown, rotated-away or expired key.

    `now` (default: the current time) is what expiry and the last-used write are judged against. `count` (the widget
    API passes `key_traffic.count`) is told the id of a known key, whether it was accepted, and `now`.
    """
    if not key or len(key) > _MAX_KEY_LENGTH or not key.startswith(PREFIX):
        return None
    key_hash = hash_key(key)
    cache = _lookup_cache(connection)
    lookup = cache.get(key_hash) if cache is not None else None
    if lookup is None:
        lookup = _read_lookup(connection, key_hash=key_hash, cache=cache)
    if lookup is None:
        return None
    if now is None:
        now = utcnow()
    verified = _judge(lookup, now, count)
    if verified is not None and _touch_due(lookup, now):
        _touch(connection, lookup, now)
    return verified


def _read_lookup(connection: Connection, *, key_hash: str, cache: dict[str, _KeyLookup] | None) -> _KeyLookup | None:
    """The key's row read from the database and kept in `cache` (SQLite's per-connection one) or, when that is None,
    in the process-wide cache; None for an unknown key."""
    # On PostgreSQL the process-wide cache: the generation is taken before the read, so a change heard while it runs
    # keeps a stale row out of the cache (services/key_cache.py).
    generation = key_cache.generation() if cache is None else None
    row = connection.execute(_VERIFY_STATEMENT, {'key_hash': key_hash}).first()
    if row is None:
        return None
    key_id, expires_at, last_used_at, organization_id, name, subdomain, sandbox_subdomain = row
    verified = VerifiedKey(organization_id, name, subdomain, sandbox_subdomain, expires_at is not None)
    lookup = _KeyLookup(key_id, expires_at, last_used_at, verified)
    if cache is not None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key_hash] = lookup
    else:
        key_cache.put(key_hash, lookup, generation)
    return lookup


def _judge(
    lookup: '_KeyLookup', now: datetime, count: Callable[[int, bool, datetime], None] | None
) -> VerifiedKey | None:
    accepted = lookup.expires_at is None or lookup.expires_at > now
    if count is not None:
        count(lookup.key_id, accepted, now)
    return lookup.verified if accepted else None


def _touch_due(lookup: '_KeyLookup', now: datetime) -> bool:
    last_used_at = lookup.last_used_at
    due = last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION
    if not due:
        return False
    retry_at = _touch_failed.get(lookup.key_id)
    return retry_at is None or now >= retry_at


def _touch(connection: Connection, lookup: '_KeyLookup', now: datetime) -> None:
    """At most one write per key per minute, so the hot path stays read-only. (A connection's own commits leave its
    change marker alone, so this write keeps the cache; the entry is updated to match.) Best effort: while another
    writer holds the database the write is skipped, not waited for, and the next request records it; a database
    that refuses writes (a read-only PostgreSQL after a failover, SQLSTATE 25006) or any other failure of this
    bookkeeping write leaves the key working and is tried again a minute later."""
    connection.commit()
    try:
        with without_lock_wait(connection):
            connection.execute(_TOUCH_STATEMENT, {'key_id': lookup.key_id, 'now': now})
            connection.commit()
        lookup.last_used_at = now
        _touch_failed.pop(lookup.key_id, None)
    except DBAPIError as error:
        with suppress(DBAPIError):
            connection.rollback()
        if connection.dialect.name == 'sqlite' and isinstance(error, OperationalError):
            return  # busy: the next request tries again
        _touch_failed[lookup.key_id] = now + LAST_USED_RESOLUTION
        log.warning('API key %d: could not record its last use (%s); the key keeps working', lookup.key_id, error.orig)


def _lookup_cache(connection: Connection) -> dict[str, _KeyLookup] | None:
    marker = change_marker(connection)
    if marker is None:
        return None
    tagged = connection.info.get(_CACHE_INFO_KEY)
    if tagged is None or tagged[0] != marker:
        tagged = connection.info[_CACHE_INFO_KEY] = (marker, {})
    return tagged[1]


def _active_key(*, session: Session, organization_id: int) -> ApiKey | None:
    return session.exec(
        select(ApiKey).where(ApiKey.organization_id == organization_id, col(ApiKey.expires_at).is_(None))
    ).first()


def _add_key(*, session: Session, actor: User) -> str:
    plaintext = new_plaintext_key()
    session.add(
        ApiKey(
            organization_id=actor.organization_id,
            key_hash=hash_key(plaintext),
            encrypted_key=crypto.encrypt(plaintext),
            last4=plaintext[-4:],
            created_by_id=actor.id,
        )
    )
    session.flush()
    # Generated or rotated: other processes refresh their key cards.
    events.publish(session=session, kind=events.EventKind.KEY_CHANGED, organization_id=actor.organization_id)
    key_cache.invalidate(session=session)  # the commit returns once no process accepts the old key
    return plaintext
