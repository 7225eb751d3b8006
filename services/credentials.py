"""Everything that lets a person in, forgotten at once: when they are removed from the team, and again when an
invitation brings the same address back (the same person, or a mailbox given to someone else), so an accepted
invitation starts from nothing but the new password.

Passkeys, the authenticator app and its recovery codes, open password-reset links, sign-ins waiting for their second
step, the code lock, and every session (in every process: sessions are rows, see `services/sessions.py`).
"""

from sqlmodel import Session, col, delete

from models import AuthenticatorApp, CodeLock, Passkey, PasswordResetToken, PendingSignIn, RecoveryCode
from services import sessions


def forget_all(*, session: Session, user_id: int) -> None:
    """Delete every credential and session of the account (inside the caller's transaction)."""
    for model in (Passkey, AuthenticatorApp, RecoveryCode, PasswordResetToken, PendingSignIn, CodeLock):
        session.exec(delete(model).where(col(model.user_id) == user_id))
    sessions.end_all(session=session, user_id=user_id)
