"""Two-factor sign-in in the services: setting up the app, the code step, recovery codes, throttling, the
organization's requirement and the admin's reset."""

import time
from datetime import timedelta

import pytest
from pyotp.totp import TOTP
from sqlmodel import Session, select

from models import AuditAction, AuditEvent, AuthenticatorApp, BrowserSession, PendingSignIn, RecoveryCode, Role, User
from models.base import stored_id, utcnow
from services.db import write_scope
from services.errors import LoginLocked, PermissionDenied, ReauthenticationRequired, ValidationFailed
from services.identity import attempts, sessions, two_factor
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in


def code_for(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or `steps_ahead` 30-second steps from now)."""
    return TOTP(secret).at(time.time() + 30 * steps_ahead)


def actions_of(session: Session, action: AuditAction) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        return {
            'admin': make_user(session, organization=organization, email='ada@example.com'),
            'member': make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER),
        }


def enrol(user: User) -> tuple[str, list[str]]:
    """Set up an authenticator app for `user`: its secret and the recovery codes shown once."""
    with write_scope() as session:
        secret = two_factor.begin_enrolment(session=session, actor=acting(session, user)).secret
    with write_scope() as session:
        codes = two_factor.confirm_enrolment(session=session, user=user, code=code_for(secret), ip='192.0.2.1')
    assert codes is not None
    return secret, codes


def pending_token(user: User) -> str:
    """What the sign-in page does after the right password: a pending sign-in, its cookie token."""
    with write_scope() as session:
        handoff = two_factor.begin_pending(session=session, user=user, ip='192.0.2.1', user_agent='Test')
    with write_scope() as session:
        token = two_factor.complete_pending_handoff(session=session, code=handoff)
    assert token is not None
    return token


def enter_code(token: str, code: str, ip: str = '192.0.2.1') -> two_factor.CodeOutcome:
    with write_scope() as session:
        return two_factor.check_sign_in_code(session=session, token=token, code=code, ip=ip)


def test_setting_up_the_app_needs_one_right_code_and_gives_ten_recovery_codes(team: dict[str, User]) -> None:
    ada = team['admin']
    with write_scope() as session:
        enrolment = two_factor.begin_enrolment(session=session, actor=acting(session, ada))
        assert enrolment.uri.startswith('otpauth://totp/CX%20Toolbox%20Dashboard:ada%40example.com?secret=')
        stored = session.exec(select(AuthenticatorApp)).one()
        assert enrolment.secret not in stored.secret_encrypted  # encrypted with the server secret
        assert stored.confirmed_at is None
    with write_scope() as session:
        assert two_factor.confirm_enrolment(session=session, user=ada, code='000000', ip='192.0.2.1') in (None, [])
        assert two_factor.password_is_enough(session=session, user=ada)  # not on until a right code
    with write_scope() as session:
        codes = two_factor.confirm_enrolment(session=session, user=ada, code=code_for(enrolment.secret))
    assert codes is not None and len(codes) == 10 and len(set(codes)) == 10
    with write_scope() as session:
        assert two_factor.status(session=session, user=ada).recovery_codes_left == 10
        hashes = session.exec(select(RecoveryCode.code_hash)).all()
        assert not set(codes) & set(hashes)  # stored hashed
        assert len(actions_of(session, AuditAction.TWO_FACTOR_FAILED)) == 1
        assert len(actions_of(session, AuditAction.TWO_FACTOR_ENABLED)) == 1
        assert not two_factor.password_is_enough(session=session, user=ada)


def test_the_password_alone_starts_no_session_and_the_code_finishes_the_sign_in(team: dict[str, User]) -> None:
    secret, _ = enrol(team['admin'])
    ada = sign_in('ada@example.com', DEFAULT_PASSWORD)
    with write_scope() as session:
        assert not two_factor.password_is_enough(session=session, user=ada)
        assert actions_of(session, AuditAction.LOGIN_SUCCEEDED) == []  # not signed in yet
    token = pending_token(ada)
    with write_scope() as session:
        assert two_factor.pending_step(session=session, token=token) == two_factor.PendingStep(
            email='ada@example.com', needs_set_up=False, has_app=True
        )
        assert two_factor.pending_step(session=session, token='forged') is None
    outcome = enter_code(token, code_for(secret, steps_ahead=1))  # the set-up used the current step
    assert outcome.user is not None and outcome.user.email == 'ada@example.com'
    with write_scope() as session:
        assert session.exec(select(PendingSignIn)).all() == []
        (signed,) = actions_of(session, AuditAction.LOGIN_SUCCEEDED)
        assert signed.target == 'with an authenticator app'
    with pytest.raises(two_factor.SignInExpired):
        enter_code(token, code_for(secret, steps_ahead=1))  # the pending sign-in is gone


def test_a_code_is_accepted_once(team: dict[str, User]) -> None:
    secret, _ = enrol(team['admin'])
    first, second = pending_token(team['admin']), pending_token(team['admin'])
    code = code_for(secret, steps_ahead=1)
    assert enter_code(first, code).user is not None
    refused = enter_code(second, code)
    assert refused.user is None and refused.message == two_factor.WRONG_CODE
    assert enter_code(second, code_for(secret)).user is None  # an older step than the one used: refused too
    with write_scope() as session:
        assert len(actions_of(session, AuditAction.TWO_FACTOR_FAILED)) == 2


def test_a_recovery_code_works_once(team: dict[str, User]) -> None:
    _, codes = enrol(team['admin'])
    token = pending_token(team['admin'])
    outcome = enter_code(token, f'  {codes[3].upper()} ')  # as typed from paper: case and spaces do not matter
    assert outcome.user is not None and outcome.used_recovery_code and outcome.recovery_codes_left == 9
    again = enter_code(pending_token(team['admin']), codes[3])
    assert again.user is None
    with write_scope() as session:
        (used,) = actions_of(session, AuditAction.RECOVERY_CODE_USED)
        assert used.target == '9 left'
        assert two_factor.status(session=session, user=team['admin']).recovery_codes_left == 9


def test_wrong_codes_are_throttled_like_passwords(team: dict[str, User]) -> None:
    secret, _ = enrol(team['admin'])
    token = pending_token(team['admin'])
    for _ in range(attempts.PAIR_LIMIT):
        assert enter_code(token, '123456' if code_for(secret, 1) != '123456' else '654321').user is None
    sign_in('ada@example.com', DEFAULT_PASSWORD)  # a right password does not clear the count of wrong codes
    with pytest.raises(LoginLocked, match='Too many failed attempts'):
        enter_code(token, code_for(secret, steps_ahead=1))
    assert enter_code(token, code_for(secret, steps_ahead=1), ip='198.51.100.9').user is not None  # elsewhere: fine
    with write_scope() as session:
        failures = actions_of(session, AuditAction.TWO_FACTOR_FAILED)
        assert [(event.actor_email, event.ip) for event in failures] == [('ada@example.com', '192.0.2.1')] * 5


def test_an_expired_pending_sign_in_is_refused(team: dict[str, User]) -> None:
    enrol(team['admin'])
    token = pending_token(team['admin'])
    with write_scope() as session:
        row = session.exec(select(PendingSignIn)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
    with pytest.raises(two_factor.SignInExpired, match='This sign-in has expired'):
        enter_code(token, '123456')


def test_the_requirement_sends_members_without_a_second_factor_to_set_one_up(team: dict[str, User]) -> None:
    ada, max_ = team['admin'], team['member']
    with write_scope() as session:
        max_session = sessions.start(session=session, user=max_, ip=None, user_agent=None)
    with write_scope() as session:
        max_token = sessions.complete_handoff(session=session, code=max_session, previous_token=None)
    with (
        write_scope() as session,
        pytest.raises(ValidationFailed, match='Set up your own authenticator app or passkey first'),
    ):
        two_factor.set_requirement(session=session, actor=acting(session, ada), required=True)
    enrol(ada)
    with write_scope() as session, pytest.raises(ReauthenticationRequired):
        two_factor.set_requirement(session=session, actor=acting(session, ada, password_minutes_ago=60), required=True)
    with write_scope() as session, pytest.raises(PermissionDenied):
        two_factor.set_requirement(session=session, actor=acting(session, max_), required=True)
    with write_scope() as session:
        without = two_factor.set_requirement(session=session, actor=acting(session, ada), required=True)
    assert without == [max_.id]
    with write_scope() as session:
        assert sessions.signed_in(session=session, token=max_token) is None  # his session no longer counts
        assert len(actions_of(session, AuditAction.TWO_FACTOR_REQUIRED)) == 1
        assert not two_factor.password_is_enough(session=session, user=max_)
    token = pending_token(sign_in('max@example.com', DEFAULT_PASSWORD))
    with write_scope() as session:
        assert two_factor.pending_step(session=session, token=token) == two_factor.PendingStep(
            email='max@example.com', needs_set_up=True
        )
        with pytest.raises(ValidationFailed, match='Set up your authenticator app first'):
            two_factor.finish_set_up_sign_in(session=session, token=token)
    with write_scope() as session:
        pending_user = two_factor.pending_user(session=session, token=token)
    enrol(pending_user)
    with write_scope() as session:
        assert two_factor.finish_set_up_sign_in(session=session, token=token).email == 'max@example.com'
        assert sessions.signed_in(session=session, token=max_token) is not None  # set up: his session counts again
        with pytest.raises(PermissionDenied, match='requires two-factor authentication'):
            two_factor.turn_off(session=session, actor=acting(session, max_))


def test_an_admin_resets_a_members_second_factor_with_their_own_code(team: dict[str, User]) -> None:
    ada, max_ = team['admin'], team['member']
    enrol(max_)
    with write_scope() as session, pytest.raises(ValidationFailed, match='Set up your own authenticator app first'):
        two_factor.reset_second_factor(
            session=session, actor=acting(session, ada), user_id=stored_id(max_), code='123456'
        )
    ada_secret, _ = enrol(ada)
    with write_scope() as session, pytest.raises(PermissionDenied, match='Only admins'):
        two_factor.reset_second_factor(
            session=session, actor=acting(session, max_), user_id=stored_id(ada), code='123456'
        )
    with write_scope() as session, pytest.raises(ReauthenticationRequired):
        two_factor.reset_second_factor(
            session=session,
            actor=acting(session, ada, password_minutes_ago=None),
            user_id=stored_id(max_),
            code=code_for(ada_secret, 1),
        )
    wrong = '111111' if code_for(ada_secret, 1) != '111111' else '222222'
    with write_scope() as session:
        assert not two_factor.reset_second_factor(
            session=session, actor=acting(session, ada), user_id=stored_id(max_), code=wrong
        )
    with write_scope() as session:
        assert two_factor.has_second_factor(session=session, user_id=stored_id(max_))
        assert len(actions_of(session, AuditAction.TWO_FACTOR_FAILED)) == 1
    with write_scope() as session:
        assert two_factor.reset_second_factor(
            session=session,
            actor=acting(session, ada, ip='192.0.2.5'),
            user_id=stored_id(max_),
            code=code_for(ada_secret, 1),
        )
    with write_scope() as session:
        assert not two_factor.has_second_factor(session=session, user_id=stored_id(max_))
        assert session.exec(select(RecoveryCode).where(RecoveryCode.user_id == max_.id)).all() == []
        (reset,) = actions_of(session, AuditAction.TWO_FACTOR_RESET)
        assert (reset.actor_email, reset.target, reset.ip) == ('ada@example.com', 'max@example.com', '192.0.2.5')
    max_again = sign_in('max@example.com', DEFAULT_PASSWORD)
    with write_scope() as session:
        assert two_factor.password_is_enough(session=session, user=max_again)  # the password is enough again


def test_the_operator_resets_the_last_admins_second_factor(team: dict[str, User]) -> None:
    enrol(team['admin'])
    with write_scope() as session:
        signed_in_before = session.exec(select(BrowserSession.id)).all()  # the browser the set-up was done in
        assert two_factor.reset_from_command_line(session=session, email=' ADA@example.com ').email == 'ada@example.com'
    with write_scope() as session:
        assert not two_factor.has_second_factor(session=session, user_id=stored_id(team['admin']))
        (reset,) = actions_of(session, AuditAction.TWO_FACTOR_RESET)
        assert (reset.actor_email, reset.target) == ('command line', 'ada@example.com')
        assert session.exec(select(BrowserSession.id)).all() == signed_in_before  # the reset signs nobody in


def test_the_team_list_knows_whose_second_factor_an_admin_can_reset(team: dict[str, User]) -> None:
    ada, max_ = team['admin'], team['member']
    enrol(max_)
    ids = [stored_id(ada), stored_id(max_)]
    with write_scope() as session:
        assert two_factor.with_second_factor(session=session, actor=ada, user_ids=ids) == {max_.id}
        assert two_factor.with_second_factor(session=session, actor=max_, user_ids=ids) == set()  # admins only
        other = make_user(session, organization=make_organization(session), email='eve@example.com')
        assert two_factor.with_second_factor(session=session, actor=other, user_ids=ids) == set()  # own team only
