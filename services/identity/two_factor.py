"""Two-factor sign-in: an authenticator app (TOTP) with single-use recovery codes, the organization's requirement,
and the step between a right password and a session.

- The TOTP secret is stored encrypted with the server secret (`services/crypto.py`); a recovery code only as its HMAC
  under a key derived from the same secret, so a copy of the database alone opens neither.
- A code is accepted once: the app row remembers the 30-second step of the last accepted code, and a code of that
  step or an earlier one is refused (no replay inside its window, nor of an older code).
- Codes are throttled like passwords (`services/identity/attempts.py`), counted under their own key per account
  (`second-factor:<email>`), so a right password never clears the count of wrong codes; every wrong code is audited.
- "Has a second factor" has one definition (`holds_second_factor`: a confirmed app or a passkey) that every check
  uses. A right password for an account with one (or in an organization that requires one) starts no session: it
  starts a `PendingSignIn` (10 minutes), bound to the browser by a cookie of its own. Presenting a factor (a code, a
  recovery code or one of the account's passkeys), or setting up the app (only for an account with no factor at all,
  when the organization requires one), ends it; then the caller starts the session (`services/identity/sessions.start`).
- Wrong codes wear nothing down: they add up per account and lock the codes until a reset
(`services/identity/code_lock.py`).

Every function here runs inside the caller's transaction; none is slow (no bcrypt), so the code checks claim their
attempt, check and record the outcome in one transaction. A wrong code returns a refusal instead of raising, so the
counted attempt and its audit entry are committed; the caller raises once the transaction has ended.
"""

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_
from sqlmodel import Session, col, delete, func, select

from models import AuditAction, AuthenticatorApp, Organization, PendingSignIn, RecoveryCode, Role, User, UserStatus
from models.base import utcnow
from models.passkey import Passkey
from services import audit, crypto, events
from services.acting import Actor
from services.audit import record_event
from services.db import lock_account
from services.errors import NotFound, PermissionDenied, ReauthenticationRequired, ServiceError, ValidationFailed
from services.identity import attempts, code_lock, handoff, passkeys
from services.permissions import password_is_recent, require_admin, require_recent_password
from services.version import PRODUCT_NAME

ISSUER = PRODUCT_NAME
STEP_SECONDS = 30
CODE_DIGITS = 6
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'  # no 0/o, 1/l/i: easy to read off paper
RECOVERY_CODE_LENGTH = 10  # shown as two groups of 5: about 49 bits each
PENDING_LIFETIME = timedelta(minutes=10)

THROTTLE = attempts.Throttle.SECOND_FACTOR
MAX_CODE_INPUT = 40

WRONG_CODE = 'Wrong code. Check the time on your phone, or use a recovery code.'
# A wrong code while setting the app up: there are no recovery codes yet to point to (they come after this step).
WRONG_SET_UP_CODE = 'Wrong code. Check that the time on your phone is right, then enter the newest 6-digit code.'
PENDING_GONE = 'This sign-in has expired. Sign in again.'
PRESENT_A_FACTOR = 'This account already has a second factor: sign in with it.'
UNREADABLE_SECRET = (
    "This authenticator app cannot be checked: the server's secret changed since it was set up. Ask an admin to reset "
    'your two-factor authentication (or run `uv run main.py reset-2fa EMAIL` on the server).'
)


class SignInExpired(NotFound):
    def __init__(self) -> None:
        super().__init__(PENDING_GONE)


@dataclass(frozen=True)
class Enrolment:
    """What the set-up shows: the secret as text for manual entry and the `otpauth://` URI the QR code holds."""

    secret: str
    uri: str


@dataclass(frozen=True)
class Status:
    """The Security page's view of a person's second factor."""

    app_on: bool
    confirmed_at: datetime | None
    recovery_codes_left: int
    required: bool


@dataclass(frozen=True)
class PendingStep:
    """A pending sign-in as its page needs it: who, whether they still have to set up a second factor (only an
    account with none at all), which factors they can present, and whether wrong codes have locked the codes."""

    email: str
    needs_set_up: bool
    has_app: bool = False
    has_passkey: bool = False
    codes_locked: bool = False

    @property
    def codes_usable(self) -> bool:
        """A code (the app's, or a recovery code) can finish this sign-in: there is an app, and wrong codes have not
        locked its codes."""
        return self.has_app and not self.codes_locked


@dataclass(frozen=True)
class CodeOutcome:
    """The result of one code: `user` when accepted (the caller starts the session), else the failure was
    recorded and `message` says why."""

    user: User | None
    used_recovery_code: bool = False
    recovery_codes_left: int = 0
    message: str = WRONG_CODE


# --- what an account has --------------------------------------------------------------------------------------


def has_authenticator_app(*, session: Session, user_id: int) -> bool:
    """The account has a confirmed authenticator app (its codes and recovery codes work at the second step)."""
    found = session.exec(
        select(AuthenticatorApp.id).where(
            AuthenticatorApp.user_id == user_id, col(AuthenticatorApp.confirmed_at).is_not(None)
        )
    ).first()
    return found is not None


def holds_second_factor(user_id: Any) -> ColumnElement[bool]:
    """THE definition of "this account has a second factor", as SQL: a confirmed authenticator app or a passkey.
    `user_id` is a value, a bound parameter or a column (`User.id`, correlated). Everything that asks uses this."""
    app = select(AuthenticatorApp.id).where(
        AuthenticatorApp.user_id == user_id, col(AuthenticatorApp.confirmed_at).is_not(None)
    )
    passkey = select(Passkey.id).where(Passkey.user_id == user_id)
    return or_(app.exists(), passkey.exists())


def has_second_factor(*, session: Session, user_id: int | None) -> bool:
    """The account has a second factor (`holds_second_factor`): after the password it must present one of them, and
    a password alone never signs it in nor counts as a recent password entry."""
    if user_id is None:
        return False
    return bool(session.exec(select(holds_second_factor(user_id))).one())


# Built once (it runs on every page load and page event): the organization requires a second factor, and the user has
# none. One statement, on the held connection, without the ORM.
_SECOND_FACTOR_MISSING = select(Organization.id).where(
    Organization.id == bindparam('organization_id'),
    col(Organization.require_two_factor).is_(True),
    ~holds_second_factor(bindparam('user_id')),
)


def setup_required(*, session: Session, user: User) -> bool:
    """The organization requires a second factor and this account has none yet: until it sets one up it can do
    nothing but that (its sessions count as signed out; `services/identity/sessions.signed_in`)."""
    assert user.id is not None
    found = session.connection().execute(
        _SECOND_FACTOR_MISSING, {'organization_id': user.organization_id, 'user_id': user.id}
    )
    return found.first() is not None


def password_is_enough(*, session: Session, user: User) -> bool:
    """After the right password: True when it alone signs in (the account has no second factor and its organization
    requires none). Otherwise a second step follows: presenting one of the account's factors, or, for an account with
    none at all in an organization that requires one, setting up an authenticator app."""
    assert user.id is not None
    if has_second_factor(session=session, user_id=user.id):
        return False
    organization = session.get(Organization, user.organization_id)
    return organization is None or not organization.require_two_factor


def with_second_factor(*, session: Session, actor: User, user_ids: list[int]) -> set[int]:
    """Which of these members of the actor's organization have a second factor to reset (for the team list's
    `Reset two-factor`; admins only, empty for anyone else)."""
    if actor.role != Role.ADMIN or not user_ids:
        return set()
    held = select(User.id).where(
        User.organization_id == actor.organization_id, col(User.id).in_(user_ids), holds_second_factor(User.id)
    )
    return {user_id for user_id in session.exec(held).all() if user_id is not None}


def status(*, session: Session, user: User) -> Status:
    app = _app_of(session=session, user_id=user.id)
    left = session.exec(
        select(func.count()).where(RecoveryCode.user_id == user.id, col(RecoveryCode.used_at).is_(None))
    ).one()
    organization = session.get(Organization, user.organization_id)
    confirmed = app is not None and app.confirmed_at is not None
    return Status(
        app_on=confirmed,
        confirmed_at=app.confirmed_at if app is not None and confirmed else None,
        recovery_codes_left=left if confirmed else 0,
        required=organization is not None and organization.require_two_factor,
    )


# --- setting up the authenticator app -------------------------------------------------------------------------


def begin_enrolment(*, session: Session, actor: Actor) -> Enrolment:
    """A secret for a new authenticator app (needs a recent password, like adding a passkey), stored unconfirmed until
    one code from the app is entered. Always a new one: an unconfirmed secret is never shown again (to another
    session, say); a set-up started again replaces the earlier one."""
    require_recent_password(session=session, actor=actor)
    return _new_enrolment(session=session, user=actor.user)


def _new_enrolment(*, session: Session, user: User) -> Enrolment:
    stored = _active_user(session=session, user_id=user.id)
    lock_account(session=session, email=stored.email)  # one app row per account, also when two set-ups start at once
    app = _app_of(session=session, user_id=stored.id)
    if app is not None and app.confirmed_at is not None:
        raise ValidationFailed('Your authenticator app is already set up. Turn it off first to set up another.')
    if app is not None:
        session.delete(app)
        session.flush()
    # Here, not at the top: a start-up and the first page never need them (bench/start_time.py).
    import pyotp
    from pyotp.totp import TOTP

    secret = pyotp.random_base32()
    assert stored.id is not None
    session.add(AuthenticatorApp(user_id=stored.id, secret_encrypted=crypto.encrypt(secret)))
    session.flush()
    uri = TOTP(secret).provisioning_uri(name=stored.email, issuer_name=ISSUER)
    return Enrolment(secret=secret, uri=uri)


def confirm_enrolment(*, session: Session, user: User, code: str, ip: str | None = None) -> list[str] | None:
    """Switch the app on with one code from it: returns the 10 new recovery codes (shown once), or None after
    recording a wrong code (the caller raises once the transaction has ended). Throttled like sign-in codes."""
    stored = _active_user(session=session, user_id=user.id)
    lock_account(session=session, email=stored.email)  # not while a set-up started again replaces the app
    claim_id = _claim(session=session, user=stored, ip=ip)
    app = _app_of(session=session, user_id=stored.id)
    if app is None or app.confirmed_at is not None:
        raise ValidationFailed('Start again: choose Set up authenticator app.', field='code')
    step = _matching_step(_secret_of(app), _digits(code), app.last_used_step)
    if step is None:
        _record_failure(session=session, user=stored, ip=ip)
        return None
    attempts.succeeded(session=session, claim_id=claim_id, email=stored.email, ip=ip, throttle=THROTTLE)
    app.confirmed_at, app.last_used_step = utcnow(), step
    session.add(app)
    codes = _new_recovery_codes(session=session, user=stored)
    record_event(
        session=session,
        organization_id=stored.organization_id,
        actor=stored,
        action=AuditAction.TWO_FACTOR_ENABLED,
        target=stored.email,
        ip=ip,
    )
    return codes


def new_recovery_codes(*, session: Session, actor: Actor) -> list[str]:
    """Replace the actor's recovery codes with 10 new ones (the old ones stop working); needs a recent password."""
    require_recent_password(session=session, actor=actor)
    stored = _active_user(session=session, user_id=actor.user.id)
    assert stored.id is not None
    lock_account(session=session, email=stored.email)  # two renewals at once leave one set of codes, not two
    if not has_authenticator_app(session=session, user_id=stored.id):
        raise ValidationFailed('Set up an authenticator app first.')
    codes = _new_recovery_codes(session=session, user=stored)
    record_event(
        session=session,
        organization_id=stored.organization_id,
        actor=stored,
        action=AuditAction.RECOVERY_CODES_RENEWED,
        target=stored.email,
        ip=actor.ip,
    )
    return codes


def turn_off(*, session: Session, actor: Actor) -> None:
    """Remove the actor's own authenticator app and recovery codes (needs a recent password); refused while the
    organization requires a second factor."""
    require_recent_password(session=session, actor=actor)
    stored = _active_user(session=session, user_id=actor.user.id)
    lock_account(session=session, email=stored.email)
    organization = session.get(Organization, stored.organization_id)
    if organization is not None and organization.require_two_factor:
        raise PermissionDenied(
            'Your organization requires two-factor authentication, so it cannot be turned off. '
            'An admin can reset it if you lost your phone.'
        )
    _remove_second_factor(session=session, user=stored)
    record_event(
        session=session,
        organization_id=stored.organization_id,
        actor=stored,
        action=AuditAction.TWO_FACTOR_DISABLED,
        target=stored.email,
        ip=actor.ip,
    )


# --- the organization's requirement ---------------------------------------------------------------------------


def set_requirement(*, session: Session, actor: Actor, required: bool) -> list[int]:
    """`Require two-factor authentication for everyone` (admins, recent password). Turning it on needs the admin's
    own second factor (or they would be shut out at once). Returns the ids of the members who have none yet: their
    sessions stop counting now, and their next sign-in sets one up first."""
    # The organization's row lock (as `team.organizations.lock_organization`): one change of the setting at
    # a time, and the role checked after it is current.
    organization = session.get(
        Organization, actor.user.organization_id, populate_existing=True, with_for_update={'key_share': True}
    )
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    if organization is None:
        raise NotFound('Your organization no longer exists.')
    assert actor.user.id is not None
    if required and not has_second_factor(session=session, user_id=actor.user.id):
        raise ValidationFailed('Set up your own authenticator app or passkey first, then require it for everyone.')
    if organization.require_two_factor == required:
        return []
    organization.require_two_factor = required
    session.add(organization)
    record_event(
        session=session,
        organization_id=organization.id,
        actor=actor.user,
        action=AuditAction.TWO_FACTOR_REQUIRED if required else AuditAction.TWO_FACTOR_NOT_REQUIRED,
        target=organization.name,
        ip=actor.ip,
    )
    if not required:
        return []
    without = session.exec(
        select(User.id).where(
            User.organization_id == organization.id,
            User.status == UserStatus.ACTIVE,
            ~holds_second_factor(User.id),
        )
    ).all()
    for user_id in without:
        events.publish(session=session, kind=events.EventKind.SESSIONS_ENDED, organization_id=None, user_id=user_id)
    return [user_id for user_id in without if user_id is not None]


# --- recovery by an admin or the operator ---------------------------------------------------------------------


def reset_second_factor(*, session: Session, actor: Actor, user_id: int, code: str) -> bool:
    """An admin removes a member's second factor (lost phone, no recovery codes): needs the admin's recent password
    and a code from the admin's own authenticator app (or one of their recovery codes). The member signs in with
    their password next time (and sets up a new app first when the organization requires one). Returns False after
    recording a wrong code (the caller raises once the transaction has ended)."""
    require_admin(session=session, actor=actor.user)
    require_recent_password(session=session, actor=actor)
    member = session.get(User, user_id)
    if member is None or member.organization_id != actor.user.organization_id or member.status != UserStatus.ACTIVE:
        raise PermissionDenied('That person is not on your team.')
    if member.id == actor.user.id:
        raise ValidationFailed('Use Turn off on your own Security page instead.')
    lock_account(session=session, email=member.email)  # not while the member sets up a new factor
    admin = _active_user(session=session, user_id=actor.user.id)
    assert admin.id is not None
    if not has_authenticator_app(session=session, user_id=admin.id):
        raise ValidationFailed('Set up your own authenticator app first: resetting a second factor needs its code.')
    if not has_second_factor(session=session, user_id=user_id):
        raise ValidationFailed(f'{member.name} has no second factor to reset.')
    if code_lock.is_locked(session=session, user_id=admin.id):
        raise PermissionDenied(code_lock.LOCKED)
    outcome = _check_code(session=session, user=admin, code=code, ip=actor.ip)
    if outcome.user is None:
        return False
    _remove_second_factor(session=session, user=member)
    events.publish(session=session, kind=events.EventKind.TEAM_CHANGED, organization_id=actor.user.organization_id)
    record_event(
        session=session,
        organization_id=actor.user.organization_id,
        actor=admin,
        action=AuditAction.TWO_FACTOR_RESET,
        target=member.email,
        ip=actor.ip,
    )
    return True


def reset_from_command_line(*, session: Session, email: str) -> User:
    """`uv run main.py reset-2fa EMAIL`: the person holding the server removes an account's second factor (the last
    admin lost their phone); audited as done from the command line."""
    address = (email or '').strip().lower()
    member = session.exec(select(User).where(User.email == address)).first()
    if member is None or member.status != UserStatus.ACTIVE:
        raise NotFound(f'No active account uses {address}.')
    assert member.id is not None
    lock_account(session=session, email=member.email)
    if _app_of(session=session, user_id=member.id) is None and not has_second_factor(
        session=session, user_id=member.id
    ):
        raise NotFound(f'{address} has no second factor to reset.')
    _remove_second_factor(session=session, user=member)
    record_event(
        session=session,
        organization_id=member.organization_id,
        actor=None,
        actor_email=audit.OPERATOR,
        action=AuditAction.TWO_FACTOR_RESET,
        target=member.email,
    )
    return member


# --- the sign-in step after the password ----------------------------------------------------------------------


def begin_pending(*, session: Session, user: User, ip: str | None, user_agent: str | None) -> str:
    """The password was right and a second step is needed: a pending sign-in (no session); returns its one-time
    handoff code, which `complete_pending_handoff` trades for the browser's pending cookie."""
    assert user.id is not None
    prune(session=session)
    code = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        PendingSignIn(
            user_id=user.id,
            handoff_hash=crypto.sha256_hex(code),
            created_at=now,
            expires_at=now + PENDING_LIFETIME,
            ip=(ip or '')[:64] or None,
            user_agent=(user_agent or '')[:300] or None,
        )
    )
    session.flush()
    return code


def complete_pending_handoff(*, session: Session, code: str) -> str | None:
    """Trade a fresh handoff code for the pending sign-in's token (the cookie's value); None when unknown or stale."""
    redeemed = handoff.redeem(session=session, model=PendingSignIn, code=code)
    return None if redeemed is None else redeemed[1]


def pending_step(*, session: Session, token: str | None) -> PendingStep | None:
    """What the second step shows for this browser's pending sign-in; None when there is none (or it expired)."""
    row, user = _pending(session=session, token=token)
    if row is None or user is None:
        return None
    assert user.id is not None
    has_app = has_authenticator_app(session=session, user_id=user.id)
    has_passkey = session.exec(select(Passkey.id).where(Passkey.user_id == user.id)).first() is not None
    return PendingStep(
        email=user.email,
        needs_set_up=not has_second_factor(session=session, user_id=user.id),
        has_app=has_app,
        has_passkey=has_passkey,
        codes_locked=code_lock.is_locked(session=session, user_id=user.id),
    )


def begin_pending_enrolment(*, session: Session, token: str | None) -> Enrolment:
    """`begin_enrolment` for the account behind this browser's pending sign-in, whose password was entered when the
    pending sign-in began (at most 10 minutes ago)."""
    row, _ = _pending(session=session, token=token)
    user = pending_set_up_user(session=session, token=token)  # only an account with no second factor at all
    assert row is not None
    if not password_is_recent(row.created_at):
        raise ReauthenticationRequired()
    return _new_enrolment(session=session, user=user)


def pending_user(*, session: Session, token: str | None) -> User:
    """The account behind this browser's pending sign-in; raises `SignInExpired` when there is none."""
    row, user = _pending(session=session, token=token)
    if row is None or user is None:
        raise SignInExpired()
    return user


def pending_set_up_user(*, session: Session, token: str | None) -> User:
    """The account behind this browser's pending sign-in, when it may set up an authenticator app before its first
    session: only an account with no second factor at all. One that has any must present it (the code step)."""
    user = pending_user(session=session, token=token)
    if has_second_factor(session=session, user_id=user.id):
        raise PermissionDenied(PRESENT_A_FACTOR)
    return user


def check_sign_in_code(*, session: Session, token: str | None, code: str, ip: str | None = None) -> CodeOutcome:
    """The second step: a 6-digit code from the app or a recovery code. Accepted: the pending sign-in ends, the
    sign-in is audited, and the caller starts the session for `outcome.user`. Refused: counted and audited."""
    row, user = _pending(session=session, token=token)
    if row is None or user is None:
        raise SignInExpired()
    outcome = _check_code(session=session, user=user, code=code, ip=ip)
    if outcome.user is None:
        return outcome
    _end_pending(session=session, row=row)
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.LOGIN_SUCCEEDED,
        target='with a recovery code' if outcome.used_recovery_code else 'with an authenticator app',
        ip=ip,
    )
    return outcome


def second_step_passkey_options(*, session: Session, token: str | None, challenge: bytes) -> dict[str, Any]:
    """What `navigator.credentials.get()` needs at the second step: one of the pending account's own passkeys."""
    user = pending_user(session=session, token=token)
    return passkeys.sign_in_options(
        challenge=challenge, credentials=passkeys.credentials_of(session=session, user=user)
    )


def check_sign_in_passkey(
    *, session: Session, token: str | None, credential: Mapping[str, Any], challenge: bytes | None, ip: str | None
) -> passkeys.PasskeySignIn:
    """The second step with a passkey of the pending account (checked by `passkeys.sign_in`, throttled and audited
    there; a passkey of another account is refused). Accepted: the pending sign-in ends and the caller starts the
    session."""
    row, user = _pending(session=session, token=token)
    if row is None or user is None:
        raise SignInExpired()
    outcome = passkeys.sign_in(session=session, credential=credential, challenge=challenge, ip=ip, account=user)
    if outcome.user is not None:
        _end_pending(session=session, row=row)
    return outcome


def finish_set_up_sign_in(*, session: Session, token: str | None, ip: str | None = None) -> User:
    """The pending sign-in of an account that had to set up a second factor first, after it did: the pending
    sign-in ends, the sign-in is audited, and the caller starts the session."""
    row, user = _pending(session=session, token=token)
    if row is None or user is None:
        raise SignInExpired()
    assert user.id is not None
    app = _app_of(session=session, user_id=user.id)
    if app is None or app.confirmed_at is None:
        raise ValidationFailed('Set up your authenticator app first.')
    if app.confirmed_at < row.created_at or session.exec(select(Passkey.id).where(Passkey.user_id == user.id)).first():
        raise PermissionDenied(PRESENT_A_FACTOR)  # the app was not set up in this sign-in: its code is the step
    _end_pending(session=session, row=row)
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.LOGIN_SUCCEEDED,
        target='after setting up an authenticator app',
        ip=ip,
    )
    return user


def prune(*, session: Session) -> int:
    """Delete expired pending sign-ins; returns how many."""
    return session.exec(delete(PendingSignIn).where(col(PendingSignIn.expires_at) <= utcnow())).rowcount


# --- cookies for the pending sign-in --------------------------------------------------------------------------


def cookie_value(token: str) -> str:
    """The pending cookie: the token and its HMAC under a key of its own, so a forged cookie costs no lookup."""
    return crypto.signed(token, 'pending-sign-in-cookie')


def token_from_cookie(value: str | None) -> str | None:
    return crypto.unsigned(value, 'pending-sign-in-cookie')


# --- internals ------------------------------------------------------------------------------------------------


def _active_user(*, session: Session, user_id: int | None) -> User:
    stored = session.get(User, user_id) if user_id is not None else None
    if stored is None or stored.status != UserStatus.ACTIVE:
        raise PermissionDenied('Your account is no longer active.')
    return stored


def _app_of(*, session: Session, user_id: int | None) -> AuthenticatorApp | None:
    return session.exec(select(AuthenticatorApp).where(AuthenticatorApp.user_id == user_id)).first()


def _pending(*, session: Session, token: str | None) -> tuple[PendingSignIn | None, User | None]:
    if not token or len(token) > 100:
        return None, None
    row = session.exec(select(PendingSignIn).where(PendingSignIn.token_hash == crypto.sha256_hex(token))).first()
    if row is None or row.expires_at <= utcnow():
        return None, None
    user = session.get(User, row.user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        return None, None
    return row, user


def _end_pending(*, session: Session, row: PendingSignIn) -> None:
    """End the pending sign-in, once: a second factor presented twice at once (a code and a recovery code, say) makes
    one session; the other step finds it gone and rolls back."""
    ended = session.exec(delete(PendingSignIn).where(col(PendingSignIn.id) == row.id))
    if ended.rowcount != 1:
        raise SignInExpired()
    session.expunge(row)


def _claim(*, session: Session, user: User, ip: str | None) -> int:
    """Count a code attempt before it is checked (raises `LoginLocked` at the limit, like passwords)."""
    return attempts.claim(session=session, email=user.email, ip=ip, throttle=THROTTLE)


def _check_code(*, session: Session, user: User, code: str, ip: str | None) -> CodeOutcome:
    """Claim the attempt, then check `code` as a TOTP code (6 digits) or as a recovery code (anything else). Every
    wrong one counts towards the account's code lock (`services/identity/code_lock.py`); locked codes are not
    checked."""
    if code_lock.is_locked(session=session, user_id=user.id):
        return CodeOutcome(user=None, message=code_lock.LOCKED)
    claim_id = _claim(session=session, user=user, ip=ip)
    entered = (code or '')[:MAX_CODE_INPUT]
    digits = _digits(entered)
    if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit():
        accepted, used_recovery = _accept_app_code(session=session, user_id=user.id, digits=digits), False
    else:
        accepted = used_recovery = _use_recovery_code(session=session, user_id=user.id, entered=entered)
    if not accepted:
        return _refuse_code(session=session, user=user, ip=ip)
    attempts.succeeded(session=session, claim_id=claim_id, email=user.email, ip=ip, throttle=THROTTLE)
    left = _recovery_code_used(session=session, user=user, ip=ip) if used_recovery else 0
    return CodeOutcome(user=user, used_recovery_code=used_recovery, recovery_codes_left=left)


def _accept_app_code(*, session: Session, user_id: int | None, digits: str) -> bool:
    """A code of the confirmed app, newer than the last one accepted: remembered as the last one."""
    app = session.exec(
        select(AuthenticatorApp)
        .where(AuthenticatorApp.user_id == user_id, col(AuthenticatorApp.confirmed_at).is_not(None))
        .with_for_update()  # `last_used_step` moves forward once per code (the throttle's lock already serializes)
    ).first()
    step = _matching_step(_secret_of(app), digits, app.last_used_step) if app else None
    if app is None or step is None:
        return False
    app.last_used_step = step
    session.add(app)
    return True


def _use_recovery_code(*, session: Session, user_id: int | None, entered: str) -> bool:
    """An unused recovery code of the account: used up now."""
    stored = session.exec(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _recovery_hash(entered),
            col(RecoveryCode.used_at).is_(None),
        )
        .with_for_update()  # used once: a second use at the same moment waits, then finds it used
    ).first()
    if stored is None:
        return False
    stored.used_at = utcnow()
    session.add(stored)
    return True


def _refuse_code(*, session: Session, user: User, ip: str | None) -> CodeOutcome:
    _record_failure(session=session, user=user, ip=ip)
    code_lock.count_failure(session=session, user=user, ip=ip)
    if code_lock.is_locked(session=session, user_id=user.id):
        return CodeOutcome(user=None, message=code_lock.LOCKED)
    return CodeOutcome(user=None)


def _recovery_code_used(*, session: Session, user: User, ip: str | None) -> int:
    """Audit the recovery code just used; how many are left."""
    session.flush()
    left = session.exec(
        select(func.count()).where(RecoveryCode.user_id == user.id, col(RecoveryCode.used_at).is_(None))
    ).one()
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.RECOVERY_CODE_USED,
        target=f'{left} left',
        ip=ip,
    )
    return left


def _record_failure(*, session: Session, user: User, ip: str | None) -> None:
    record_event(
        session=session,
        organization_id=user.organization_id,
        actor=user,
        action=AuditAction.TWO_FACTOR_FAILED,
        target=user.email,
        ip=ip,
    )
    attempts.prune(session=session)


def _secret_of(app: AuthenticatorApp) -> str:
    try:
        return crypto.decrypt(app.secret_encrypted)
    except ServiceError:
        raise ServiceError(UNREADABLE_SECRET) from None


def _digits(code: str) -> str:
    return ''.join((code or '')[:MAX_CODE_INPUT].split())


def _matching_step(secret: str, code: str, last_used_step: int | None, now: datetime | None = None) -> int | None:
    """The time step (previous, current or next: clocks drift) whose code is `code`, if it is newer than the last
    accepted one."""
    if len(code) != CODE_DIGITS or not (code.isascii() and code.isdigit()):  # `isdigit` alone takes '١٢٣٤٥٦'
        return None
    from pyotp.totp import TOTP  # here, not at the top: see begin_enrolment

    totp = TOTP(secret, digits=CODE_DIGITS, interval=STEP_SECONDS)
    current = int((now or utcnow()).timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _new_recovery_codes(*, session: Session, user: User) -> list[str]:
    assert user.id is not None
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = ''.join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        code = f'{raw[:5]}-{raw[5:]}'
        session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(code)))
        codes.append(code)
    session.flush()
    return codes


def _recovery_hash(code: str) -> str:
    """Keyed hash of a recovery code as typed: case, spaces and dashes do not matter."""
    normalized = ''.join(char for char in (code or '').lower() if char.isalnum())[:MAX_CODE_INPUT]
    return crypto.keyed_digest('recovery-codes', normalized)


def _remove_second_factor(*, session: Session, user: User) -> None:
    assert user.id is not None
    code_lock.clear(session=session, user_id=user.id)
    session.exec(delete(AuthenticatorApp).where(col(AuthenticatorApp.user_id) == user.id))
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    session.exec(delete(PendingSignIn).where(col(PendingSignIn.user_id) == user.id))
    session.exec(delete(Passkey).where(col(Passkey.user_id) == user.id))  # the lost phone may have held them too
    attempts.unlock(session=session, email=user.email, throttle=THROTTLE)
