"""Each throttle counts under its own key, and on main those keys were plain text a person could type into the sign-in
page's `Email` field: `second-factor:<victim>` five times locked the victim out of their code step, `passkey sign-in
from <address>` locked passkey sign-in from an address. Nothing typed there reaches another throttle now."""

import time

import pytest
from pyotp.totp import TOTP

from models import User
from services.db import write_scope
from services.errors import InvalidCredentials, LoginLocked
from services.identity import attempts, passkeys, two_factor
from tests.factories import acting, make_organization, make_user, sign_in

VICTIM_IP = '203.0.113.9'


@pytest.fixture
def victim(database: None) -> tuple[User, str]:
    """An account with an authenticator app: it and its secret."""
    with write_scope() as session:
        user = make_user(session, organization=make_organization(session), email='victim@example.com')
        secret = two_factor.begin_enrolment(session=session, actor=acting(session, user)).secret
        assert two_factor.confirm_enrolment(session=session, user=user, code=TOTP(secret).now()) is not None
    return user, secret


def type_into_the_email_field(typed: str, ip: str, times: int = attempts.PAIR_LIMIT) -> None:
    for _ in range(times):
        with pytest.raises((InvalidCredentials, LoginLocked)):
            sign_in(typed, 'anything at all', ip=ip)


def test_typing_the_code_steps_key_does_not_lock_the_victims_code_step(victim: tuple[User, str]) -> None:
    user, secret = victim
    type_into_the_email_field(f'second-factor:{user.email}', ip=VICTIM_IP)
    with write_scope() as session:
        code = two_factor.begin_pending(session=session, user=user, ip=VICTIM_IP, user_agent='Victim')
    with write_scope() as session:
        token = two_factor.complete_pending_handoff(session=session, code=code)
    with write_scope() as session:
        outcome = two_factor.check_sign_in_code(
            session=session, token=token, code=TOTP(secret).at(time.time() + 30), ip=VICTIM_IP
        )
    assert outcome.user is not None, 'the victim signs in with the right code'


def test_typing_the_passkey_key_does_not_lock_passkey_sign_in(database: None) -> None:
    # 50 failures of one key from anywhere lock it everywhere: typed from ten addresses, five each.
    for typed in (f'passkey sign-in from {VICTIM_IP}', f'passkey:{VICTIM_IP}'):
        for n in range(attempts.ACCOUNT_LIMIT // attempts.PAIR_LIMIT):
            type_into_the_email_field(typed, ip=f'198.51.100.{n}')
    with write_scope() as session:
        # An unknown passkey: refused, but counted and refused as a passkey (not locked by what was typed).
        outcome = passkeys.sign_in(session=session, credential={'id': 'unknown'}, challenge=None, ip=VICTIM_IP)
    assert outcome.user is None


def test_a_password_lockout_still_locks_the_password(victim: tuple[User, str]) -> None:
    user, _ = victim
    type_into_the_email_field(user.email, ip=VICTIM_IP)
    with pytest.raises(LoginLocked):
        sign_in(user.email, 'anything at all', ip=VICTIM_IP)
    with write_scope() as session:
        assert attempts.locked_emails(session=session, emails=[user.email]) == {user.email}
