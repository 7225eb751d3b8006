"""The code lock in the services, on each database engine: wrong codes add up over 30 days (a right code does not
reset them), lock at the limit, and a password change, a reset or a second-factor reset lifts the lock."""

from datetime import timedelta

import pytest
from pyotp.totp import TOTP
from sqlmodel import select

from models import CodeLock, User
from models.base import utcnow
from services.db import read_scope, write_scope
from services.identity import auth, code_lock, two_factor
from tests.factories import acting, make_organization, make_user


@pytest.fixture
def ada(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session), email='ada@example.com')


def fail(user: User, times: int = 1) -> None:
    for _ in range(times):
        with write_scope() as session:
            code_lock.count_failure(session=session, user=user, ip='198.51.100.1')


def locked(user: User) -> bool:
    with read_scope() as session:
        return code_lock.is_locked(session=session, user_id=user.id)


def test_wrong_codes_lock_at_the_limit_and_a_password_change_lifts_it(ada: User) -> None:
    fail(ada, code_lock.LOCK_AFTER - 1)
    assert not locked(ada)
    fail(ada)
    assert locked(ada)
    with write_scope() as session:
        new_hash = auth.hash_password('a new password')
        auth.change_password(session=session, user=ada, password_hash=new_hash, keep_session_id=None)
    assert not locked(ada)


def test_the_count_starts_again_after_30_days_but_a_lock_stays(ada: User) -> None:
    fail(ada, code_lock.LOCK_AFTER - 1)
    with write_scope() as session:
        row = session.exec(select(CodeLock)).one()
        row.window_started_at = utcnow() - code_lock.WINDOW - timedelta(seconds=1)
        session.add(row)
    fail(ada)
    assert not locked(ada)
    with read_scope() as session:
        assert session.exec(select(CodeLock)).one().failures == 1
    fail(ada, code_lock.LOCK_AFTER - 1)
    with write_scope() as session:
        row = session.exec(select(CodeLock)).one()
        row.window_started_at = utcnow() - code_lock.WINDOW * 2
        session.add(row)
    assert locked(ada)  # a lock does not wear off
    with write_scope() as session:
        secret = two_factor.begin_enrolment(session=session, actor=acting(session, ada)).secret
        assert two_factor.confirm_enrolment(session=session, user=ada, code=TOTP(secret).now()) is not None
    with write_scope() as session:
        two_factor.reset_from_command_line(session=session, email='ada@example.com')  # the operator's reset
    assert not locked(ada)
