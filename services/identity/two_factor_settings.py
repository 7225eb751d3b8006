"""The authenticator-app steps a signed-in person takes outside the sign-in: confirm their own app's set-up (Security
page), and, as an admin, reset a member's second factor (team list). A wrong code is counted and committed before the
person is told, so each step takes the transaction scopes."""

from services.acting import Actor, Scopes
from services.errors import ValidationFailed
from services.identity import two_factor

# A wrong code while setting the app up: there are no recovery codes yet to point to (they come after this step).


def confirm_set_up(*, scopes: Scopes, actor: Actor, code: str) -> list[str]:
    """Switch the person's new authenticator app on with one code from it; returns the 10 recovery codes (shown
    once). A wrong code stays counted (throttled like sign-in codes) and raises `ValidationFailed` at `code`."""
    codes = scopes.writing(
        lambda session: two_factor.confirm_enrolment(session=session, user=actor.user, code=code, ip=actor.ip)
    )
    if codes is None:
        raise ValidationFailed(two_factor.WRONG_SET_UP_CODE, field='code')
    return codes


def reset_member(*, scopes: Scopes, actor: Actor, member_id: int, code: str) -> bool:
    """`Reset two-factor` for a member (admins, recent password, a code from the admin's own app): see
    `two_factor.reset_second_factor`. True once reset; a wrong code stays counted and raises `ValidationFailed` at
    `code`."""
    done = scopes.writing(
        lambda session: two_factor.reset_second_factor(session=session, actor=actor, user_id=member_id, code=code)
    )
    if not done:
        raise ValidationFailed(two_factor.WRONG_CODE, field='code')
    return True
