"""The sign-in use cases without a page: the password, each second step, a passkey, the handoffs; on both engines."""

import re
import time

import pytest
from pyotp.totp import TOTP
from sqlmodel import select

from models import AuditAction, AuditEvent, LoginFailure, Organization, PendingSignIn, Role, User
from models.base import stored_id
from services import config
from services.acting import SCOPES
from services.errors import InvalidCredentials, LoginLocked, PermissionDenied, ServiceError, ValidationFailed
from services.identity import attempts, passkeys, sessions, sign_in, two_factor
from services.identity.next_step import Next, NextStep
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user
from tests.passkey_authenticator import SoftAuthenticator

IP = '192.0.2.7'
AGENT = 'Firefox/130 on Linux'


@pytest.fixture
def ada(database: None, monkeypatch: pytest.MonkeyPatch) -> User:
    monkeypatch.setenv('CXT_PUBLIC_URL', 'https://dash.example.com')  # passkeys need it (the soft authenticator's)
    config.configure(config.load_settings())
    with SCOPES.write() as session:
        return make_user(session, organization=make_organization(session, name='Acme'), email='ada@example.com')


def with_password(email: str = 'ada@example.com', password: str = DEFAULT_PASSWORD) -> Next:
    return sign_in.sign_in_with_password(scopes=SCOPES, email=email, password=password, ip=IP, user_agent=AGENT)


def signed_in_as(next_step: Next) -> str:
    """What the browser ends up as after `/session/start`: the email of the session's owner."""
    assert next_step.step == NextStep.SESSION
    token = sign_in.start_session(scopes=SCOPES, code=next_step.handoff, previous_token=None)
    assert token is not None
    signed = SCOPES.reading(lambda session: sessions.signed_in(session=session, token=token))
    assert signed is not None
    return signed.user.email


def pending_token(next_step: Next) -> str:
    """What the browser holds after `/login/code/start`: the pending sign-in's token."""
    assert next_step.step == NextStep.SECOND_STEP
    token = sign_in.start_second_step(scopes=SCOPES, code=next_step.handoff)
    assert token is not None
    return token


def set_up_app(user: User) -> tuple[str, list[str]]:
    with SCOPES.write() as session:
        secret = two_factor.begin_enrolment(session=session, actor=acting(session, user)).secret
    with SCOPES.write() as session:
        codes = two_factor.confirm_enrolment(session=session, user=user, code=TOTP(secret).now())
    assert codes is not None
    return secret, codes


def add_passkey(user: User) -> SoftAuthenticator:
    authenticator, slot = SoftAuthenticator(), passkeys.ChallengeSlot()
    options = SCOPES.reading(
        lambda session: passkeys.registration_options(session=session, actor=user, challenge=slot.issue())
    )
    credential = authenticator.create(options)
    with SCOPES.write() as session:
        passkeys.add_passkey(
            session=session, actor=user, name='Laptop', credential=credential, challenge=slot.take(), ip=IP
        )
    return authenticator


def audited(action: AuditAction) -> list[AuditEvent]:
    return SCOPES.reading(lambda session: list(session.exec(select(AuditEvent).where(AuditEvent.action == action))))


def test_the_right_password_of_an_account_without_a_second_factor_starts_a_session(ada: User) -> None:
    next_step = with_password(email=' ADA@example.com ')
    assert signed_in_as(next_step) == 'ada@example.com'
    assert len(audited(AuditAction.LOGIN_SUCCEEDED)) == 1


def test_a_wrong_password_is_counted_and_the_sixth_try_is_locked_out(ada: User) -> None:
    for _ in range(attempts.PAIR_LIMIT):
        with pytest.raises(InvalidCredentials):
            with_password(password='not the password')
    assert len(SCOPES.reading(lambda session: session.exec(select(LoginFailure)).all())) == attempts.PAIR_LIMIT
    assert len(audited(AuditAction.LOGIN_FAILED)) == attempts.PAIR_LIMIT
    with pytest.raises(LoginLocked):
        with_password()  # even the right password, until the window passes


def test_an_unknown_email_is_refused_like_a_wrong_password(ada: User) -> None:
    with pytest.raises(InvalidCredentials):
        with_password(email='nobody@example.com')


@pytest.mark.parametrize('factor', ['authenticator app', 'passkey'])
def test_a_password_alone_never_signs_in_an_account_with_a_second_factor(ada: User, factor: str) -> None:
    if factor == 'passkey':
        add_passkey(ada)
    else:
        set_up_app(ada)
    next_step = with_password()
    assert next_step.step == NextStep.SECOND_STEP
    assert sign_in.start_session(scopes=SCOPES, code=next_step.handoff, previous_token=None) is None  # no session
    token = pending_token(next_step)
    step = SCOPES.reading(lambda session: two_factor.pending_step(session=session, token=token))
    assert step is not None and not step.needs_set_up
    assert (step.has_app, step.has_passkey) == (factor == 'authenticator app', factor == 'passkey')
    assert audited(AuditAction.LOGIN_SUCCEEDED) == []  # not signed in yet


def test_an_organization_that_requires_a_second_factor_sends_an_account_without_one_to_set_it_up(ada: User) -> None:
    with SCOPES.write() as session:
        organization = session.get(Organization, ada.organization_id)
        assert organization is not None
        organization.require_two_factor = True
        session.add(organization)
    token = pending_token(with_password())
    step = SCOPES.reading(lambda session: two_factor.pending_step(session=session, token=token))
    assert step is not None and step.needs_set_up
    enrolment = sign_in.begin_required_set_up(scopes=SCOPES, token=token)
    with pytest.raises(ValidationFailed) as wrong:
        sign_in.confirm_required_set_up(scopes=SCOPES, token=token, code='000000', ip=IP)
    assert wrong.value.errors == {'code': two_factor.WRONG_SET_UP_CODE}
    assert len(audited(AuditAction.TWO_FACTOR_FAILED)) == 1  # committed before the refusal
    codes = sign_in.confirm_required_set_up(scopes=SCOPES, token=token, code=TOTP(enrolment.secret).now(), ip=IP)
    assert len(codes) == two_factor.RECOVERY_CODE_COUNT
    next_step = sign_in.finish_required_set_up(scopes=SCOPES, token=token, ip=IP, user_agent=AGENT)
    assert signed_in_as(next_step) == 'ada@example.com'


def test_a_member_whose_organization_requires_single_sign_on_is_refused_a_password_sign_in(
    ada: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('CXT_OIDC_ISSUER', 'https://id.example.com')
    monkeypatch.setenv('CXT_OIDC_CLIENT_ID', 'dashboard')
    monkeypatch.setenv('CXT_OIDC_CLIENT_SECRET', 'secret')
    monkeypatch.setenv('CXT_OIDC_NAME', 'Acme ID')
    config.configure(config.load_settings())
    with SCOPES.write() as session:
        organization = session.get(Organization, ada.organization_id)
        assert organization is not None
        make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER)
        organization.require_single_sign_on = True
        session.add(organization)
    with pytest.raises(PermissionDenied, match='signs in with Acme ID only'):
        with_password(email='max@example.com')
    assert len(audited(AuditAction.SSO_PASSWORD_REFUSED)) == 1
    assert signed_in_as(with_password()) == 'ada@example.com'  # an admin keeps the way back in


def test_the_code_step_counts_a_wrong_code_and_a_right_one_starts_the_session(ada: User) -> None:
    secret, _ = set_up_app(ada)
    token = pending_token(with_password())
    with pytest.raises(ValidationFailed) as wrong:
        sign_in.sign_in_with_code(scopes=SCOPES, token=token, code='000000', ip=IP, user_agent=AGENT)
    assert wrong.value.errors == {'code': two_factor.WRONG_CODE}
    assert len(audited(AuditAction.TWO_FACTOR_FAILED)) == 1
    code = TOTP(secret).at(time.time() + 30)  # the set-up used the current step
    next_step = sign_in.sign_in_with_code(scopes=SCOPES, token=token, code=code, ip=IP, user_agent=AGENT)
    assert signed_in_as(next_step) == 'ada@example.com'
    assert [event.target for event in audited(AuditAction.LOGIN_SUCCEEDED)] == ['with an authenticator app']
    with pytest.raises(two_factor.SignInExpired):  # the pending sign-in is gone
        sign_in.sign_in_with_code(scopes=SCOPES, token=token, code=code, ip=IP, user_agent=AGENT)


def test_a_recovery_code_finishes_the_sign_in_once(ada: User) -> None:
    _, codes = set_up_app(ada)
    token = pending_token(with_password())
    next_step = sign_in.sign_in_with_code(scopes=SCOPES, token=token, code=codes[0].upper(), ip=IP, user_agent=AGENT)
    assert signed_in_as(next_step) == 'ada@example.com'
    again = pending_token(with_password())
    with pytest.raises(ValidationFailed):
        sign_in.sign_in_with_code(scopes=SCOPES, token=again, code=codes[0], ip=IP, user_agent=AGENT)


def test_the_second_step_takes_only_a_passkey_of_the_pending_account(ada: User) -> None:
    authenticator = add_passkey(ada)
    with SCOPES.write() as session:
        other = make_user(session, organization=make_organization(session), email='eve@example.com')
    other_authenticator = add_passkey(other)
    token = pending_token(with_password())

    def present(device: SoftAuthenticator) -> Next:
        slot = passkeys.ChallengeSlot()
        options = sign_in.second_step_passkey_options(scopes=SCOPES, token=token, challenge=slot.issue())
        credential = device.get(options)
        return sign_in.sign_in_with_second_step_passkey(
            scopes=SCOPES, token=token, credential=credential, challenge=slot.take(credential), ip=IP, user_agent=AGENT
        )

    with pytest.raises(ServiceError, match=re.escape(passkeys.NOT_SIGNED_IN)):
        present(other_authenticator)
    assert len(audited(AuditAction.PASSKEY_SIGN_IN_FAILED)) == 1  # committed before the refusal
    assert signed_in_as(present(authenticator)) == 'ada@example.com'
    assert SCOPES.reading(lambda session: session.exec(select(PendingSignIn)).all()) == []


def test_a_passkey_alone_signs_in_and_counts_as_a_password_entry(ada: User) -> None:
    authenticator = add_passkey(ada)
    slot = passkeys.ChallengeSlot()
    credential = authenticator.get(passkeys.sign_in_options(challenge=slot.issue()))
    next_step = sign_in.sign_in_with_passkey(
        scopes=SCOPES, credential=credential, challenge=slot.take(credential), ip=IP, user_agent=AGENT
    )
    token = sign_in.start_session(scopes=SCOPES, code=next_step.handoff, previous_token=None)
    signed = SCOPES.reading(lambda session: sessions.signed_in(session=session, token=token))
    assert signed is not None and signed.user.id == stored_id(ada) and signed.password_confirmed_at is not None
    with pytest.raises(ServiceError, match=re.escape(passkeys.EXPIRED)):  # the challenge was used
        sign_in.sign_in_with_passkey(scopes=SCOPES, credential=credential, challenge=None, ip=IP, user_agent=AGENT)


def test_a_handoff_code_is_traded_once_and_ends_the_browsers_previous_session(ada: User) -> None:
    first = sign_in.start_session(scopes=SCOPES, code=with_password().handoff, previous_token=None)
    code = with_password().handoff
    second = sign_in.start_session(scopes=SCOPES, code=code, previous_token=first)
    assert second is not None
    assert sign_in.start_session(scopes=SCOPES, code=code, previous_token=None) is None  # used
    assert SCOPES.reading(lambda session: sessions.signed_in(session=session, token=first)) is None
    assert sign_in.start_second_step(scopes=SCOPES, code='made-up') is None
