"""Signing in, one use case per step a person takes: the password, each second step (an authentication or recovery
code, a passkey, setting up the app the organization requires), a passkey on its own, and trading a handoff code for
the cookie.

Each takes the transaction scopes: a refused attempt is counted and audited in a transaction that commits, and the
refusal is raised only after it has; bcrypt runs between transactions, never inside one. The result says where the
browser goes next (`next_step.Next`); the caller only turns it into a URL.
"""

from collections.abc import Mapping
from typing import Any

from services.acting import Scopes
from services.errors import InvalidCredentials, PermissionDenied, ServiceError, ValidationFailed
from services.identity import auth, passkeys, sessions, single_sign_on, two_factor
from services.identity.next_step import Next, after_password, session_started


def sign_in_with_password(*, scopes: Scopes, email: str, password: str, ip: str | None, user_agent: str | None) -> Next:
    """`Sign in` with an email and a password: counted before bcrypt (so parallel guesses cannot race the lockout),
    checked outside any transaction, then a session or the second step. Raises `InvalidCredentials`, `LoginLocked`,
    or `PermissionDenied` for a member whose organization signs in with single sign-on only."""
    attempt = scopes.writing(lambda session: auth.begin_sign_in(session=session, email=email, ip=ip))
    password_ok = auth.check_attempt_password(attempt, password)
    if password_ok and attempt.user_id is not None:
        user_id = attempt.user_id
        refusal = scopes.writing(
            lambda session: single_sign_on.password_sign_in_refusal(session=session, user_id=user_id, ip=ip)
        )
        if refusal is not None:
            raise PermissionDenied(refusal)
    with scopes.write() as session:
        user = auth.finish_sign_in(session=session, attempt=attempt, password_ok=password_ok)
        next_step = after_password(session=session, user=user, ip=ip, user_agent=user_agent) if user else None
    if next_step is None:
        raise InvalidCredentials()  # after the commit: the failure stays counted
    return next_step


def sign_in_with_code(*, scopes: Scopes, token: str | None, code: str, ip: str | None, user_agent: str | None) -> Next:
    """The second step with a 6-digit code from the authenticator app or one of the recovery codes (told apart by
    their form): the session. A wrong code is counted and audited, then refused (`ValidationFailed` at `code`)."""
    with scopes.write() as session:
        outcome = two_factor.check_sign_in_code(session=session, token=token, code=code, ip=ip)
        user = outcome.user
        handoff = (
            sessions.start(session=session, user=user, ip=ip, user_agent=user_agent, second_factor=True)
            if user is not None
            else None
        )
    if handoff is None:
        raise ValidationFailed(outcome.message, field='code')
    return session_started(handoff)


def second_step_passkey_options(*, scopes: Scopes, token: str | None, challenge: bytes) -> dict[str, Any]:
    """What the browser needs to offer the pending account's own passkeys at the second step."""
    return scopes.reading(
        lambda session: two_factor.second_step_passkey_options(session=session, token=token, challenge=challenge)
    )


def sign_in_with_second_step_passkey(
    *,
    scopes: Scopes,
    token: str | None,
    credential: Mapping[str, Any],
    challenge: bytes | None,
    ip: str | None,
    user_agent: str | None,
) -> Next:
    """`Use a passkey` at the second step: one of the pending account's own passkeys, then the session. A refusal is
    recorded before it is raised."""
    with scopes.write() as session:
        outcome = two_factor.check_sign_in_passkey(
            session=session, token=token, credential=credential, challenge=challenge, ip=ip
        )
        user = outcome.user
        handoff = (
            sessions.start(session=session, user=user, ip=ip, user_agent=user_agent, second_factor=True)
            if user
            else None
        )
    if handoff is None:
        raise ServiceError(outcome.refusal)
    return session_started(handoff)


def sign_in_with_passkey(
    *, scopes: Scopes, credential: Mapping[str, Any], challenge: bytes | None, ip: str | None, user_agent: str | None
) -> Next:
    """`Sign in with a passkey` on `/login`: any passkey of this dashboard, both factors at once, so straight to a
    session (counting as a password entry). A refusal is recorded before it is raised."""
    with scopes.write() as session:
        outcome = passkeys.sign_in(session=session, credential=credential, challenge=challenge, ip=ip)
        user = outcome.user
        handoff = (
            sessions.start(session=session, user=user, ip=ip, user_agent=user_agent, second_factor=True)
            if user
            else None
        )
    if handoff is None:
        raise ServiceError(outcome.refusal)
    return session_started(handoff)


def begin_required_set_up(*, scopes: Scopes, token: str | None) -> two_factor.Enrolment:
    """The organization requires a second factor and the pending account has none: a new authenticator app secret."""
    return scopes.writing(lambda session: two_factor.begin_pending_enrolment(session=session, token=token))


def confirm_required_set_up(*, scopes: Scopes, token: str | None, code: str, ip: str | None) -> list[str]:
    """One code from the new app switches it on: the 10 recovery codes (shown once). A wrong code is counted and
    audited, then refused (`ValidationFailed` at `code`)."""
    with scopes.write() as session:
        user = two_factor.pending_set_up_user(session=session, token=token)
        codes = two_factor.confirm_enrolment(session=session, user=user, code=code, ip=ip)
    if codes is None:
        raise ValidationFailed(two_factor.WRONG_SET_UP_CODE, field='code')
    return codes


def finish_required_set_up(*, scopes: Scopes, token: str | None, ip: str | None, user_agent: str | None) -> Next:
    """`Continue` once the app is set up: the pending sign-in ends and the session starts."""
    with scopes.write() as session:
        user = two_factor.finish_set_up_sign_in(session=session, token=token, ip=ip)
        return session_started(
            sessions.start(session=session, user=user, ip=ip, user_agent=user_agent, second_factor=True)
        )


def start_session(*, scopes: Scopes, code: str, previous_token: str | None) -> str | None:
    """`/session/start`: the session's token for its fresh handoff code (the browser's previous session ends), or
    None for an unknown, used or stale code."""
    return scopes.writing(
        lambda session: sessions.complete_handoff(session=session, code=code, previous_token=previous_token)
    )


def start_second_step(*, scopes: Scopes, code: str) -> str | None:
    """`/login/code/start`: the pending sign-in's token for its fresh handoff code, or None."""
    return scopes.writing(lambda session: two_factor.complete_pending_handoff(session=session, code=code))
