"""Passkeys through the services, with a software authenticator that signs like a real one (P-256, `none`
attestation): add, list, sign in (sign count checked, challenge used once), remove, and the refusals."""

from typing import Any

import pytest
from sqlmodel import select

from models import AuditAction, AuditEvent, Passkey, User
from models.base import utcnow
from services import config
from services.db import read_scope, write_scope
from services.errors import LoginLocked, NotFound, ReauthenticationRequired, ServiceError
from services.identity import passkeys, sessions
from tests.factories import acting, make_organization, make_user
from tests.passkey_authenticator import SoftAuthenticator

PUBLIC_URL = 'https://dash.example.com'
IP = '203.0.113.9'


@pytest.fixture
def relying_party(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('CXT_PUBLIC_URL', PUBLIC_URL)
    config.configure(config.load_settings())


def _person() -> User:
    with write_scope() as db:
        return make_user(db, organization=make_organization(db), name='Ada Admin')


def _add(user: User, authenticator: SoftAuthenticator, name: str = 'Laptop') -> passkeys.PasskeyInfo:
    slot = passkeys.ChallengeSlot()
    with read_scope() as db:
        options = passkeys.registration_options(session=db, actor=user, challenge=slot.issue())
    credential = authenticator.create(options)
    with write_scope() as db:
        return passkeys.add_passkey(
            session=db, actor=user, name=name, credential=credential, challenge=slot.take(), ip=IP
        )


def _sign_in(authenticator: SoftAuthenticator, **signing: Any) -> passkeys.PasskeySignIn:
    slot = passkeys.ChallengeSlot()
    options = passkeys.sign_in_options(challenge=slot.issue())
    credential = authenticator.get(options, **signing)
    with write_scope() as db:
        return passkeys.sign_in(session=db, credential=credential, challenge=slot.take(), ip=IP)


def _actions() -> list[tuple[str, str | None]]:
    with read_scope() as db:
        events = db.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
        return [(event.action, event.target) for event in events]


def test_relying_party_is_the_public_url() -> None:
    config.configure(config.Settings(public_url='https://dash.example.com:443/'))
    assert passkeys.relying_party() == passkeys.RelyingParty(id='dash.example.com', origin='https://dash.example.com')
    config.configure(config.Settings(public_url='http://localhost:8123'))
    assert passkeys.relying_party() == passkeys.RelyingParty(id='localhost', origin='http://localhost:8123')
    assert passkeys.unavailable_reason() is None
    config.configure(config.Settings(public_url='http://dash.example.com'))
    assert passkeys.unavailable_reason() == (
        'Passkeys need the dashboard over HTTPS: set CXT_PUBLIC_URL to https://dash.example.com.'
    )
    config.configure(config.Settings(host='127.0.0.1', port=8080))
    reason = passkeys.unavailable_reason()
    assert reason is not None and 'not the IP address 127.0.0.1' in reason


def test_options_ask_for_a_discoverable_verified_passkey_and_exclude_the_ones_held(relying_party: None) -> None:
    user, authenticator = _person(), SoftAuthenticator()
    with read_scope() as db:
        options = passkeys.registration_options(session=db, actor=user, challenge=b'x' * 32)
    assert options['rp'] == {'id': 'dash.example.com', 'name': 'CX Toolbox Dashboard'}
    assert options['user']['name'] == user.email
    assert options['authenticatorSelection']['residentKey'] == 'required'
    assert options['authenticatorSelection']['userVerification'] == 'required'
    assert options['excludeCredentials'] == []
    added = _add(user, authenticator)
    with read_scope() as db:
        options = passkeys.registration_options(session=db, actor=user, challenge=b'y' * 32)
        stored = db.exec(select(Passkey)).one()
    assert [held['id'] for held in options['excludeCredentials']] == [stored.credential_id]
    assert stored.name == added.name == 'Laptop'
    assert stored.transports == 'internal,hybrid'
    assert (AuditAction.PASSKEY_ADDED, 'Laptop') in _actions()


def test_a_passkey_signs_in_without_email_and_is_listed_as_used(relying_party: None) -> None:
    user, authenticator = _person(), SoftAuthenticator()
    _add(user, authenticator)
    outcome = _sign_in(authenticator)
    assert outcome.user is not None and outcome.user.id == user.id
    with write_scope() as db:  # the page starts the session in the same transaction
        assert sessions.start(session=db, user=outcome.user, ip=IP, user_agent='test')
    with read_scope() as db:
        listed = passkeys.list_passkeys(session=db, actor=user)
    assert [info.name for info in listed] == ['Laptop']
    assert listed[0].last_used_at is not None
    assert (AuditAction.PASSKEY_SIGN_IN_SUCCEEDED, 'Laptop') in _actions()


def test_a_challenge_is_used_once_and_expires(relying_party: None, monkeypatch: pytest.MonkeyPatch) -> None:
    slot = passkeys.ChallengeSlot()
    challenge = slot.issue()
    assert slot.take() == challenge
    assert slot.take() is None  # used once
    slot.issue()
    later = utcnow() + passkeys.CHALLENGE_LIFETIME
    monkeypatch.setattr(passkeys, 'utcnow', lambda: later)
    assert slot.take() is None  # too old


def test_an_answer_to_the_challenge_before_a_renewal_still_signs_in_once(relying_party: None) -> None:
    """The login page renews its challenge every few minutes; a click that raced the renewal signed the old one."""
    user, authenticator = _person(), SoftAuthenticator()
    _add(user, authenticator)
    slot = passkeys.ChallengeSlot()
    answer = authenticator.get(passkeys.sign_in_options(challenge=slot.issue()))
    slot.issue()  # renewed while the person was touching the sensor
    challenge = slot.take(answer)
    assert challenge is not None
    with write_scope() as db:
        assert passkeys.sign_in(session=db, credential=answer, challenge=challenge, ip=IP).user is not None
    assert slot.take(answer) is None  # every challenge of the page is used up
    foreign = passkeys.ChallengeSlot()
    foreign.issue()
    assert foreign.take(authenticator.get(passkeys.sign_in_options(challenge=b'z' * 32))) is None


def test_a_replayed_answer_and_a_counter_that_does_not_grow_are_refused(relying_party: None) -> None:
    user, authenticator = _person(), SoftAuthenticator()
    _add(user, authenticator)
    slot = passkeys.ChallengeSlot()
    options = passkeys.sign_in_options(challenge=slot.issue())
    answer = authenticator.get(options)
    challenge = slot.take()
    with write_scope() as db:
        assert passkeys.sign_in(session=db, credential=answer, challenge=challenge, ip=IP).user is not None
    with write_scope() as db:  # the same answer again: its challenge is gone from the page, and its counter is old
        replay = passkeys.sign_in(session=db, credential=answer, challenge=slot.take(), ip=IP)
    assert replay.user is None and replay.refusal == passkeys.EXPIRED
    cloned = _sign_in(authenticator, counter=1)  # a copy of the key that still counts from the start
    assert cloned.user is None and cloned.refusal == passkeys.NOT_SIGNED_IN
    assert any(
        action == AuditAction.PASSKEY_SIGN_IN_FAILED and 'sign count' in (target or '') for action, target in _actions()
    )


def test_a_passkey_without_user_verification_is_refused(relying_party: None) -> None:
    user, authenticator = _person(), SoftAuthenticator()
    _add(user, authenticator)
    assert _sign_in(authenticator, verified=False).user is None


def test_an_answer_from_another_origin_is_refused(relying_party: None) -> None:
    user = _person()
    _add(user, SoftAuthenticator())
    phishing = SoftAuthenticator(origin='https://dash.example.com.evil.test')
    slot = passkeys.ChallengeSlot()
    with read_scope() as db:
        options = passkeys.registration_options(session=db, actor=user, challenge=slot.issue())
    with write_scope() as db, pytest.raises(ServiceError, match='could not be checked'):
        passkeys.add_passkey(
            session=db, actor=user, name='x', credential=phishing.create(options), challenge=slot.take(), ip=IP
        )


def test_removal_needs_a_recent_password_and_a_removed_passkey_signs_in_no_more(relying_party: None) -> None:
    user, authenticator = _person(), SoftAuthenticator()
    added = _add(user, authenticator)
    with write_scope() as db, pytest.raises(ReauthenticationRequired):
        passkeys.remove_passkey(session=db, actor=acting(db, user, password_minutes_ago=None), passkey_id=added.id)
    with write_scope() as db:
        assert passkeys.remove_passkey(session=db, actor=acting(db, user, ip=IP), passkey_id=added.id) == 'Laptop'
    with write_scope() as db, pytest.raises(NotFound):
        passkeys.remove_passkey(session=db, actor=acting(db, user), passkey_id=added.id)
    outcome = _sign_in(authenticator)
    assert outcome.user is None and outcome.refusal == passkeys.NOT_SIGNED_IN
    actions = _actions()
    assert (AuditAction.PASSKEY_REMOVED, 'Laptop') in actions
    assert (AuditAction.PASSKEY_SIGN_IN_FAILED, 'Refused an unknown passkey') in actions


def test_someone_else_cannot_remove_my_passkey(relying_party: None) -> None:
    owner, other = _person(), _person()
    added = _add(owner, SoftAuthenticator())
    with write_scope() as db, pytest.raises(NotFound):
        passkeys.remove_passkey(session=db, actor=acting(db, other), passkey_id=added.id)


def test_failed_passkey_sign_ins_are_throttled_by_address(relying_party: None) -> None:
    user, authenticator = _person(), SoftAuthenticator()
    _add(user, authenticator)
    stranger = SoftAuthenticator()
    stranger.create({'user': {'id': 'AA'}, 'rp': {'id': 'dash.example.com'}, 'challenge': 'AA'})
    for _ in range(5):
        assert _sign_in(stranger).user is None
    with pytest.raises(LoginLocked):
        _sign_in(authenticator)  # even the right passkey waits: this address has guessed too often


def test_a_removed_member_cannot_sign_in_with_a_passkey(relying_party: None) -> None:
    from models import UserStatus

    user, authenticator = _person(), SoftAuthenticator()
    _add(user, authenticator)
    with write_scope() as db:
        stored = db.get_one(User, user.id)
        stored.status = UserStatus.REMOVED
        db.add(stored)
    assert _sign_in(authenticator).user is None
