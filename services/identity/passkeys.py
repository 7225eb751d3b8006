"""Passkeys (WebAuthn, through py_webauthn): add them, list and remove them, and sign in with one.

A passkey counts as both factors: the authenticator holds the key and checks the person (user verification is
required), so a passkey sign-in asks for neither the password nor a code. Credentials are discoverable (resident
keys): the browser offers the account's passkeys without an email being typed first.

The relying party is the dashboard at `CXT_PUBLIC_URL`: its host is the RP id, its origin the only origin accepted.
Browsers refuse an IP address as RP id, so passkeys need a domain name there (`localhost` counts).

Each ceremony's challenge is made and kept on the server by the page that asked for it (`ChallengeSlot`): random,
valid for 5 minutes, used once, and bound to that page of that browser (the page's socket is guarded to its own
browser, see `ui/socket_guard.py`). Failed sign-ins are audited and throttled by client address like passwords
(`services/identity/attempts.py`).
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, func, select

from models import AuditAction, Passkey, User, UserStatus
from models.base import stored_id, utcnow
from services import crypto, metrics
from services.acting import Actor
from services.audit import record_event
from services.config import current_settings, resolve_secret_key
from services.db import lock_account
from services.errors import NotFound, PermissionDenied, ServiceError, ValidationFailed
from services.identity import attempts
from services.permissions import require_recent_password
from services.version import PRODUCT_NAME

if TYPE_CHECKING:  # py_webauthn (with pyOpenSSL and pyasn1, ~7 MB resident) loads when a passkey is first used
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

RP_NAME = PRODUCT_NAME
CHALLENGE_LIFETIME = timedelta(minutes=5)
CEREMONY_TIMEOUT_MS = 120_000  # how long the browser's passkey prompt stays open (a hint browsers may shorten)
MAX_PASSKEYS = 20
NAME_MAX_LENGTH = 100
THROTTLE = attempts.Throttle.PASSKEY  # counted per client address, apart from passwords and codes
MAX_CREDENTIAL_ID = 1400  # credential ids are at most 1,023 bytes: 1,364 base64url characters
DEFAULT_NAME = 'Passkey'
CHALLENGE_BYTES = 64  # as py_webauthn's own generate_challenge
DEFAULT_PORTS = {'http': 80, 'https': 443}

EXPIRED = 'The passkey request expired. Try again.'
NOT_SIGNED_IN = 'That passkey could not sign you in. Use another passkey, or your email and password.'


@dataclass(frozen=True)
class RelyingParty:
    """Where passkeys belong: the RP id (a host name) and the one origin the browser's answers must come from."""

    id: str
    origin: str
    name: str = RP_NAME


@dataclass(frozen=True)
class PasskeyInfo:
    """One passkey as the Security page lists it."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class PasskeySignIn:
    """The outcome of a passkey sign-in: the user, or None and what to tell the person (the failure is recorded in the
    transaction, which must be committed; the caller raises `ServiceError(refusal)` afterwards)."""

    user: User | None
    refusal: str = ''


class ChallengeSlot:
    """The open challenge of a page: made here, kept here, used once and only within its lifetime.

    A page left open renews its challenge before it expires; the one before stays good until then too, so a click
    that raced the renewal still signs in. Taking a challenge ends every challenge of the slot.
    """

    KEPT = 2

    def __init__(self) -> None:
        self._issued: list[tuple[bytes, datetime]] = []

    def issue(self) -> bytes:
        """A new challenge (the previous one stays valid until it expires; older ones are forgotten)."""
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        self._issued = [*self._issued, (challenge, utcnow() + CHALLENGE_LIFETIME)][-self.KEPT :]
        return challenge

    def take(self, credential: Mapping[str, Any] | None = None) -> bytes | None:
        """The challenge the browser's answer signed (the newest one without an answer), used up now together with
        every other one of this slot; None when it was not issued here, was used already or has expired."""
        issued, self._issued = self._issued, []
        now = utcnow()
        valid = [challenge for challenge, expires_at in issued if now < expires_at]
        if credential is None:
            return valid[-1] if valid else None
        signed = _signed_challenge(credential)
        return signed if signed is not None and signed in valid else None


def _signed_challenge(credential: Mapping[str, Any]) -> bytes | None:
    """The challenge inside the answer's client data (checked again, with everything else, by py_webauthn)."""
    response = credential.get('response')
    client_data = response.get('clientDataJSON') if isinstance(response, Mapping) else None
    try:
        challenge = json.loads(_from_base64url(client_data)).get('challenge') if isinstance(client_data, str) else None
        return _from_base64url(challenge) if isinstance(challenge, str) else None
    except (ValueError, TypeError, AttributeError):
        return None


def relying_party() -> RelyingParty:
    """The RP id and origin, from `CXT_PUBLIC_URL` (or the listen address when it is unset)."""
    url = urlsplit(current_settings().resolved_public_url)
    scheme = url.scheme.lower()
    host = (url.hostname or '').lower()
    port = url.port
    shown_host = f'[{host}]' if ':' in host else host
    origin = f'{scheme}://{shown_host}' + (f':{port}' if port and port != DEFAULT_PORTS.get(scheme) else '')
    return RelyingParty(id=host, origin=origin)


def unavailable_reason() -> str | None:
    """Why passkeys cannot work with this configuration, or None when they can."""
    rp = relying_party()
    try:
        ipaddress.ip_address(rp.id)
    except ValueError:
        pass
    else:
        return (
            f'Passkeys need the dashboard at a domain name, not the IP address {rp.id}: '
            'set CXT_PUBLIC_URL to its https:// address (or use http://localhost on this computer).'
        )
    if not rp.id:
        return 'Passkeys need CXT_PUBLIC_URL to name the address of the dashboard.'
    local = rp.id == 'localhost' or rp.id.endswith('.localhost')
    if not rp.origin.startswith('https://') and not local:
        # Browsers offer passkeys only to secure pages: https, or http on this computer.
        return f'Passkeys need the dashboard over HTTPS: set CXT_PUBLIC_URL to https://{rp.id}.'
    return None


def user_handle(user: User) -> bytes:
    """The opaque id authenticators store for the account: a keyed hash of the user id (no email, nothing guessable)."""
    key = crypto.derive_key(resolve_secret_key(current_settings()), 'passkey-user-handle')
    return hmac.new(key, str(stored_id(user)).encode(), hashlib.sha256).digest()


def registration_options(*, session: Session, actor: User, challenge: bytes) -> dict[str, Any]:
    """What `navigator.credentials.create()` needs (JSON-ready) to add a passkey to the actor's account."""
    user = _active(session=session, user=actor)
    existing = session.exec(select(Passkey).where(Passkey.user_id == user.id)).all()
    if len(existing) >= MAX_PASSKEYS:
        raise ValidationFailed(f'An account can have {MAX_PASSKEYS} passkeys. Remove one before adding another.')
    import webauthn
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    rp = relying_party()
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user.email,
        user_display_name=user.name,
        user_id=user_handle(user),
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        # The same authenticator cannot register twice: the browser says so instead of making a second passkey.
        exclude_credentials=[_descriptor(passkey) for passkey in existing],
        supported_pub_key_algs=_algorithms(),
    )
    return json.loads(webauthn.options_to_json(options))


def add_passkey(
    *,
    session: Session,
    actor: User,
    name: str,
    credential: Mapping[str, Any],
    challenge: bytes | None,
    ip: str | None = None,
) -> PasskeyInfo:
    """Check the browser's answer to `registration_options` against the challenge it was given, then keep the new
    passkey under `name`; audited."""
    name = _passkey_name(name)
    user = _active(session=session, user=actor)
    if challenge is None:
        raise ServiceError(EXPIRED)
    import webauthn
    from webauthn.helpers.exceptions import WebAuthnException

    rp = relying_party()
    try:
        verified = webauthn.verify_registration_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
            supported_pub_key_algs=_algorithms(),
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as refused:
        raise ServiceError(f'The passkey could not be checked, so it was not added ({refused}).') from None
    credential_id = _to_base64url(verified.credential_id)
    if len(credential_id) > MAX_CREDENTIAL_ID:
        raise ServiceError('The id of the passkey is longer than passkeys allow, so it was not added.')
    lock_account(session=session, email=user.email)  # two added at once still count against MAX_PASSKEYS
    if session.exec(select(Passkey.id).where(Passkey.credential_id == credential_id)).first() is not None:
        raise ServiceError('That passkey is already registered.')
    count = session.exec(select(func.count()).select_from(Passkey).where(Passkey.user_id == user.id)).one()
    if count >= MAX_PASSKEYS:
        raise ValidationFailed(f'An account can have {MAX_PASSKEYS} passkeys. Remove one before adding another.')
    passkey = Passkey(
        user_id=stored_id(user),
        name=name,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        user_handle=_to_base64url(user_handle(user)),
        transports=_transports(credential),
    )
    session.add(passkey)
    session.flush()
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.PASSKEY_ADDED,
        target=name,
        ip=ip,
    )
    return _info(passkey)


def list_passkeys(*, session: Session, actor: User) -> list[PasskeyInfo]:
    """The actor's own passkeys, oldest first."""
    rows = session.exec(
        select(Passkey).where(Passkey.user_id == actor.id).order_by(col(Passkey.created_at), col(Passkey.id))
    ).all()
    return [_info(row) for row in rows]


def remove_passkey(*, session: Session, actor: Actor, passkey_id: int) -> str:
    """Remove one of the actor's own passkeys (a password entered in the last 10 minutes); returns its name. It signs
    in no more from this moment on; audited."""
    require_recent_password(session=session, actor=actor)
    user = _active(session=session, user=actor.user)
    passkey = session.exec(select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user.id)).first()
    if passkey is None:
        raise NotFound('That passkey was already removed.')
    name = passkey.name
    session.delete(passkey)
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.PASSKEY_REMOVED,
        target=name,
        ip=actor.ip,
    )
    return name


def credentials_of(*, session: Session, user: User) -> list['PublicKeyCredentialDescriptor']:
    """The account's passkeys as the browser names them (the second step asks for one of these only)."""
    return [_descriptor(passkey) for passkey in session.exec(select(Passkey).where(Passkey.user_id == user.id)).all()]


def sign_in_options(
    *, challenge: bytes, credentials: list['PublicKeyCredentialDescriptor'] | None = None
) -> dict[str, Any]:
    """What `navigator.credentials.get()` needs (JSON-ready): any passkey of this dashboard (or one of
    `credentials`), the person verified."""
    import webauthn
    from webauthn.helpers.structs import UserVerificationRequirement

    options = webauthn.generate_authentication_options(
        rp_id=relying_party().id,
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        user_verification=UserVerificationRequirement.REQUIRED,
        allow_credentials=credentials,
    )
    return json.loads(webauthn.options_to_json(options))


def sign_in(
    *,
    session: Session,
    credential: Mapping[str, Any],
    challenge: bytes | None,
    ip: str | None,
    account: User | None = None,
) -> PasskeySignIn:
    """Sign in with the browser's answer to `sign_in_options` (write): counted against the client address before it
    is checked, like a password (raises LoginLocked at the limit); success or failure is audited. With `account`
    (the second step after a password), only a passkey of that account is accepted."""
    with metrics.counting_lockout(metrics.SignInMethod.PASSKEY):
        claim_id = attempts.claim(session=session, email=_throttle_key(ip), ip=ip, throttle=THROTTLE)
    passkey = _stored_passkey(session=session, credential=credential)
    user = session.get(User, passkey.user_id) if passkey is not None else None
    if passkey is None or user is None:
        return _refused(session=session, user=None, ip=ip, reason='an unknown passkey', refusal=NOT_SIGNED_IN)
    refused = _refused_before_check(
        session=session, passkey=passkey, user=user, account=account, credential=credential, challenge=challenge, ip=ip
    )
    if refused is not None:
        return refused
    assert challenge is not None  # `_refused_before_check` refuses an expired request
    new_sign_count = _verified_sign_count(passkey=passkey, credential=credential, challenge=challenge)
    if isinstance(new_sign_count, str):
        reason = f'{passkey.name}: {new_sign_count}'[:200]
        return _refused(session=session, user=user, ip=ip, reason=reason, refusal=NOT_SIGNED_IN)
    passkey.sign_count = new_sign_count
    passkey.last_used_at = utcnow()
    session.add(passkey)
    attempts.succeeded(session=session, claim_id=claim_id, email=_throttle_key(ip), ip=ip, throttle=THROTTLE)
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.PASSKEY_SIGN_IN_SUCCEEDED,
        target=passkey.name,
        ip=ip,
    )
    return PasskeySignIn(user=user)


def _stored_passkey(*, session: Session, credential: Mapping[str, Any]) -> Passkey | None:
    credential_id = credential.get('id')
    if not isinstance(credential_id, str) or not 0 < len(credential_id) <= MAX_CREDENTIAL_ID:
        return None
    # FOR UPDATE: two sign-ins with one passkey at once take turns, so the second is checked against the sign count
    # the first stored.
    return session.exec(select(Passkey).where(Passkey.credential_id == credential_id).with_for_update()).first()


def _refused_before_check(
    *,
    session: Session,
    passkey: Passkey,
    user: User,
    account: User | None,
    credential: Mapping[str, Any],
    challenge: bytes | None,
    ip: str | None,
) -> PasskeySignIn | None:
    """Why this answer is refused before its signature is checked (recorded), or None."""
    if user.status != UserStatus.ACTIVE:
        return _refused(session=session, user=user, ip=ip, reason='a removed account', refusal=NOT_SIGNED_IN)
    if account is not None and account.id != user.id:
        return _refused(
            session=session, user=account, ip=ip, reason='a passkey of another account', refusal=NOT_SIGNED_IN
        )
    if challenge is None:
        return _refused(session=session, user=user, ip=ip, reason='an expired request', refusal=EXPIRED)
    response = credential.get('response')
    returned_handle = response.get('userHandle') if isinstance(response, Mapping) else None
    if returned_handle and returned_handle != passkey.user_handle:
        return _refused(session=session, user=user, ip=ip, reason='a passkey of another account', refusal=NOT_SIGNED_IN)
    return None


def _verified_sign_count(*, passkey: Passkey, credential: Mapping[str, Any], challenge: bytes) -> int | str:
    """The authenticator's new sign count once the signature checks out, else why not."""
    import webauthn
    from webauthn.helpers.exceptions import WebAuthnException

    rp = relying_party()
    try:
        verified = webauthn.verify_authentication_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as refused:
        return str(refused)
    return verified.new_sign_count


def _refused(*, session: Session, user: User | None, ip: str | None, reason: str, refusal: str) -> PasskeySignIn:
    """Record a failed passkey sign-in (its attempt stays counted) and say what the person is told."""
    record_event(
        session=session,
        organization_id=user.organization_id if user is not None else None,
        actor=None,
        actor_email=user.email if user is not None else None,
        action=AuditAction.PASSKEY_SIGN_IN_FAILED,
        target=f'Refused {reason}',
        ip=ip,
    )
    attempts.prune(session=session)
    return PasskeySignIn(user=None, refusal=refusal)


def _throttle_key(ip: str | None) -> str:
    """Passkey attempts are counted per client address (there is no email), apart from passwords (`THROTTLE`)."""
    return ip or 'an unknown address'


def _active(*, session: Session, user: User) -> User:
    stored = session.get(User, user.id) if user.id is not None else None
    if stored is None or stored.status != UserStatus.ACTIVE:
        raise PermissionDenied('Your account is no longer active.')
    return stored


def _passkey_name(raw: str) -> str:
    name = ' '.join((raw or '').split()) or DEFAULT_NAME
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(f'Use at most {NAME_MAX_LENGTH} characters', field='name')
    return name


def _algorithms() -> list[Any]:
    from webauthn.helpers.cose import COSEAlgorithmIdentifier

    return [
        COSEAlgorithmIdentifier.ECDSA_SHA_256,
        COSEAlgorithmIdentifier.EDDSA,
        COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
    ]


def _from_base64url(text: str) -> bytes:
    """WebAuthn's unpadded base64url, as py_webauthn's own helper decodes it."""
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def _to_base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def _descriptor(passkey: Passkey) -> 'PublicKeyCredentialDescriptor':
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    transports = [AuthenticatorTransport(value) for value in _known_transports((passkey.transports or '').split(','))]
    return PublicKeyCredentialDescriptor(id=_from_base64url(passkey.credential_id), transports=transports or None)


def _transports(credential: Mapping[str, Any]) -> str | None:
    response = credential.get('response')
    listed = response.get('transports') if isinstance(response, Mapping) else None
    known = _known_transports(listed if isinstance(listed, list) else [])
    return ','.join(known)[:200] or None


def _known_transports(values: list[Any]) -> list[str]:
    from webauthn.helpers.structs import AuthenticatorTransport

    allowed = {transport.value for transport in AuthenticatorTransport}
    return [value for value in dict.fromkeys(values) if isinstance(value, str) and value in allowed]


def _info(passkey: Passkey) -> PasskeyInfo:
    return PasskeyInfo(
        id=stored_id(passkey), name=passkey.name, created_at=passkey.created_at, last_used_at=passkey.last_used_at
    )
