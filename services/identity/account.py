"""The signed-in person's own sign-in, one use case per action: confirm or change their password, keep their session
alive, sign out here, of one other browser, or everywhere.

Each takes the acting person (`services.acting.Actor`); those with bcrypt in them take the transaction scopes and
open one short transaction per step, bcrypt running outside any.
"""

from datetime import datetime

from sqlmodel import Session

from models import AuditAction
from services.acting import Actor, Scopes
from services.audit import record_event
from services.errors import ValidationFailed
from services.identity import auth, sessions

WRONG_PASSWORD = 'Wrong password'


def password_is_right(*, scopes: Scopes, actor: Actor, password: str) -> bool:
    """Re-check the signed-in person's password: counted (throttled like a sign-in) before bcrypt, which runs outside
    any transaction; a wrong one is audited. Slow: call off the event loop."""
    attempt = scopes.writing(
        lambda session: auth.begin_password_confirmation(session=session, user=actor.user, ip=actor.ip)
    )
    password_ok = auth.check_attempt_password(attempt, password)
    return scopes.writing(
        lambda session: auth.finish_password_confirmation(
            session=session, attempt=attempt, password_ok=password_ok, user=actor.user
        )
    )


def confirm_password(*, scopes: Scopes, actor: Actor, password: str) -> datetime:
    """`Confirm your password`: the right password renews this session's password entry (sensitive actions are open
    for another 10 minutes); returns its time. A wrong one raises `ValidationFailed` at the field `password`."""
    if actor.session_id is None:
        raise ValidationFailed('Sign in first.')
    if not password_is_right(scopes=scopes, actor=actor, password=password):
        raise ValidationFailed(WRONG_PASSWORD, field='password')
    session_id = actor.session_id
    return scopes.writing(lambda session: sessions.password_entered(session=session, session_id=session_id))


def change_password(*, scopes: Scopes, actor: Actor, current_password: str, new_password: str) -> bool:
    """`Change password`: the new one's rules first, then the current one confirmed (throttled and audited like a
    sign-in), the new one hashed outside any transaction, stored, and every other session of the person ended. True
    once changed (every refusal raises)."""
    auth.validate_password(new_password)
    if not password_is_right(scopes=scopes, actor=actor, password=current_password):
        raise ValidationFailed(WRONG_PASSWORD, field='current_password')
    password_hash = auth.hash_password(new_password)
    scopes.writing(
        lambda session: auth.change_password(
            session=session,
            user=actor.user,
            password_hash=password_hash,
            keep_session_id=actor.session_id,
            ip=actor.ip,
        )
    )
    return True


def keep_alive(*, scopes: Scopes, session_id: int) -> None:
    """Record that the session was used now, so it does not idle out."""
    scopes.writing(lambda session: sessions.touch(session=session, session_id=session_id))


def sign_out(*, scopes: Scopes, token: str | None) -> None:
    """`Sign out`: end this browser's session (in every process: it is a row)."""
    scopes.writing(lambda session: sessions.end(session=session, token=token))


def sign_out_everywhere(*, session: Session, actor: Actor) -> int:
    """`Sign out everywhere`: end every session of the person, this one too; audited. Returns how many ended."""
    assert actor.user.id is not None
    ended = sessions.end_all(session=session, user_id=actor.user.id)
    record_event(
        session=session,
        organization_id=actor.user.organization_id,
        actor=actor.user,
        action=AuditAction.SIGNED_OUT_EVERYWHERE,
        target=f'{ended} sessions',
        ip=actor.ip,
    )
    return ended
