import statistics
import time
from datetime import timedelta

import bcrypt
import pytest
from sqlmodel import select

from models import AuditEvent, LoginFailure, Role, User
from services.db import write_scope
from services.errors import InvalidCredentials, LoginLocked, PermissionDenied, ValidationFailed
from services.identity import auth
from tests.factories import DEFAULT_PASSWORD, make_organization, make_user, sign_in


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session))


def test_product_default_cost_is_12(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the suite lowers the cost; check the real default
    assert auth.BCRYPT_ROUNDS == 12
    assert bcrypt.checkpw(b'x' * 10, auth.hash_password('x' * 10).encode())
    assert auth.hash_password('x' * 10).startswith('$2b$12$')


def test_first_admin_creates_the_organization_once(database: None) -> None:
    with write_scope() as session:
        assert auth.setup_needed(session=session)
        user = auth.create_first_admin(
            session=session,
            organization_name=' Acme  Support ',
            name='Ada',
            email='Ada@Example.COM',
            password_hash=auth.new_password_hash('long enough pw'),
        )
    assert (user.email, user.role) == ('ada@example.com', Role.ADMIN)
    with write_scope() as session:
        assert not auth.setup_needed(session=session)
    with pytest.raises(PermissionDenied), write_scope() as session:
        auth.create_first_admin(
            session=session,
            organization_name='Evil',
            name='Eve',
            email='eve@example.com',
            password_hash=auth.new_password_hash('long enough pw'),
        )


@pytest.mark.parametrize(
    ('fields', 'field'),
    [
        ({'organization_name': ''}, 'organization'),
        ({'name': '   '}, 'name'),
        ({'email': 'not an email'}, 'email'),
        ({'password': 'short'}, 'password'),
        ({'password': 'ü' * 40}, 'password'),
    ],
)
def test_setup_input_is_checked_per_field(database: None, fields: dict, field: str) -> None:
    values = {'organization_name': 'Acme', 'name': 'Ada', 'email': 'ada@example.com', 'password': 'long enough pw'}
    with pytest.raises(ValidationFailed) as raised:
        auth.validate_first_admin(**{**values, **fields})
    assert raised.value.field == field
    with write_scope() as session:
        assert auth.setup_needed(session=session)


def test_sign_in_accepts_any_email_case(admin: User) -> None:
    assert sign_in(admin.email.upper(), DEFAULT_PASSWORD).id == admin.id


def test_wrong_password_and_unknown_email_get_the_same_message(admin: User) -> None:
    with pytest.raises(InvalidCredentials) as wrong:
        sign_in(admin.email, 'wrong password!')
    with pytest.raises(InvalidCredentials) as unknown:
        sign_in('nobody@example.com', 'wrong password!')
    assert str(wrong.value) == str(unknown.value) == 'Invalid email or password'
    with write_scope() as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert actions.count('login.failed') == 2


def test_unknown_email_takes_as_long_as_a_wrong_password(admin: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, 'BCRYPT_ROUNDS', 10)
    with write_scope() as session:
        stored = session.get_one(User, admin.id)
        stored.password_hash = auth.hash_password(DEFAULT_PASSWORD)
        session.add(stored)

    def timed(email: str) -> float:
        start = time.perf_counter()
        with pytest.raises(InvalidCredentials):
            sign_in(email, 'wrong password!')
        return time.perf_counter() - start

    # Interleave, and stay below the lockout threshold by clearing failures between rounds.
    known, unknown = [], []
    for round_ in range(10):
        known.append(timed(admin.email))
        unknown.append(timed(f'nobody{round_}@example.com'))
        with write_scope() as session:
            for failure in session.exec(select(LoginFailure)).all():
                session.delete(failure)
    ratio = statistics.median(unknown) / statistics.median(known)
    # Without the dummy hash an unknown email answers ~100x faster; with it both pay one bcrypt check. The bounds
    # are wide because the machine is shared: a side channel would be two orders of magnitude, not a factor of 3.
    assert 1 / 3 < ratio < 3, (known, unknown)


def test_five_failures_lock_the_email_for_fifteen_minutes(admin: User) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            sign_in(admin.email, 'wrong password!')
    with pytest.raises(LoginLocked) as locked:
        sign_in(admin.email, DEFAULT_PASSWORD)  # even the right password is refused while locked
    assert str(locked.value) == 'Too many failed attempts. Try again in 15 minutes.'
    # Another email is not affected.
    with write_scope() as session:
        other = make_user(session, organization=make_organization(session))
    assert sign_in(other.email, DEFAULT_PASSWORD).id == other.id


def test_lock_lifts_after_the_window(admin: User) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            sign_in(admin.email, 'wrong password!')
    with write_scope() as session:
        for failure in session.exec(select(LoginFailure)).all():
            failure.created_at -= timedelta(minutes=14)
            session.add(failure)
    with pytest.raises(LoginLocked, match='Try again in 1 minutes'):
        sign_in(admin.email, DEFAULT_PASSWORD)
    with write_scope() as session:
        for failure in session.exec(select(LoginFailure)).all():
            failure.created_at -= timedelta(minutes=2)
            session.add(failure)
    assert sign_in(admin.email, DEFAULT_PASSWORD).id == admin.id


def test_success_clears_earlier_failures(admin: User) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            sign_in(admin.email, 'wrong password!')
    sign_in(admin.email, DEFAULT_PASSWORD)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            sign_in(admin.email, 'wrong password!')
    assert sign_in(admin.email, DEFAULT_PASSWORD).id == admin.id


@pytest.mark.parametrize('address', ['ops@corp.local', 'admin@acme.test', 'it@intranet.home.arpa', 'x@corp.internal'])
def test_internal_and_reserved_domains_are_accepted(address: str) -> None:
    assert auth.normalize_email(address.upper()) == address


@pytest.mark.parametrize(
    ('address', 'why'),
    [
        ('ops@localhost', 'It should have a period'),
        ('no-at-sign', 'must have an @-sign'),
        ('someone@site.invalid', 'special-use or reserved name'),
    ],
)
def test_a_refused_address_says_why(address: str, why: str) -> None:
    with pytest.raises(ValidationFailed, match='Enter a valid email address') as raised:
        auth.normalize_email(address)
    assert why in str(raised.value)
