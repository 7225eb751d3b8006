"""Everything that lets a person in, forgotten at once: when they are removed from the team, and again when an
invitation brings the same address back (the same person, or a mailbox given to someone else), so an accepted
invitation starts from nothing but the new password.

Passkeys, the authenticator app and its recovery codes, open password-reset links, sign-ins waiting for their second
step, the code lock, the link to the identity provider (single sign-on), and every session (in every process:
sessions are rows, see `services/identity/sessions.py`).
"""

from sqlmodel import Session, col, delete

from models import (
    AuthenticatorApp,
    CodeLock,
    Passkey,
    PasswordResetToken,
    PendingSignIn,
    RecoveryCode,
    SingleSignOnLink,
)
from services.identity import sessions


def forget_all(*, session: Session, user_id: int) -> None:
    """Delete every credential and session of the account (inside the caller's transaction)."""
    forgotten = (Passkey, AuthenticatorApp, RecoveryCode, PasswordResetToken, PendingSignIn, CodeLock, SingleSignOnLink)
    for model in forgotten:
        session.exec(delete(model).where(col(model.user_id) == user_id))
    sessions.end_all(session=session, user_id=user_id)
