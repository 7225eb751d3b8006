"""The authenticator-app steps outside the sign-in as use cases, without NiceGUI: confirming one's own set-up, and an
admin resetting a member's second factor. A wrong code is counted and committed before the person is told."""

import time

import pytest
from pyotp.totp import TOTP
from sqlmodel import func, select

from models import AuditAction, AuditEvent, Role, User
from models.base import stored_id
from services.acting import SCOPES
from services.db import read_scope, write_scope
from services.errors import ValidationFailed
from services.identity import two_factor, two_factor_settings
from tests.factories import acting, make_organization, make_user, signed_in_actor


@pytest.fixture
def team(database: None) -> tuple[User, User]:
    with write_scope() as session:
        organization = make_organization(session)
        return (
            make_user(session, organization=organization, role=Role.ADMIN, email='ada@example.com'),
            make_user(session, organization=organization, role=Role.MEMBER, email='max@example.com'),
        )


def wrong(code: str) -> str:
    return '111111' if code != '111111' else '222222'


def failures() -> int:
    """Wrong codes recorded (audited, and counted by the throttle)."""
    with read_scope() as session:
        failed = select(func.count()).where(AuditEvent.action == AuditAction.TWO_FACTOR_FAILED)
        return session.exec(failed.select_from(AuditEvent)).one()


def begin(user: User) -> str:
    with write_scope() as session:
        return two_factor.begin_enrolment(session=session, actor=acting(session, user)).secret


def has_second_factor(user: User) -> bool:
    with read_scope() as session:
        return two_factor.has_second_factor(session=session, user_id=stored_id(user))


def test_the_right_code_switches_the_app_on_and_gives_ten_recovery_codes(team: tuple[User, User]) -> None:
    ada, _ = team
    secret = begin(ada)
    me = signed_in_actor(ada, ip='192.0.2.3')
    codes = two_factor_settings.confirm_set_up(scopes=SCOPES, actor=me, code=TOTP(secret).now())
    assert len(set(codes)) == two_factor.RECOVERY_CODE_COUNT
    assert has_second_factor(ada)


def test_a_wrong_set_up_code_is_told_at_its_field_and_stays_counted(team: tuple[User, User]) -> None:
    ada, _ = team
    secret = begin(ada)
    me = signed_in_actor(ada)
    with pytest.raises(ValidationFailed) as raised:
        two_factor_settings.confirm_set_up(scopes=SCOPES, actor=me, code=wrong(TOTP(secret).now()))
    assert raised.value.errors == {'code': two_factor.WRONG_SET_UP_CODE}
    assert failures() == 1  # committed although the use case raised
    assert not has_second_factor(ada)


def test_an_admin_resets_a_members_second_factor_with_a_code_from_their_own_app(team: tuple[User, User]) -> None:
    ada, max_ = team
    ada_secret, max_secret = begin(ada), begin(max_)
    for user, secret in ((ada, ada_secret), (max_, max_secret)):
        two_factor_settings.confirm_set_up(scopes=SCOPES, actor=signed_in_actor(user), code=TOTP(secret).now())
    me = signed_in_actor(ada)
    now = TOTP(ada_secret).now()
    with pytest.raises(ValidationFailed) as raised:
        two_factor_settings.reset_member(scopes=SCOPES, actor=me, member_id=stored_id(max_), code=wrong(now))
    assert raised.value.errors == {'code': two_factor.WRONG_CODE}
    assert failures() == 1 and has_second_factor(max_)
    next_code = TOTP(ada_secret).at(time.time() + 30)  # the set-up used the current step
    assert two_factor_settings.reset_member(scopes=SCOPES, actor=me, member_id=stored_id(max_), code=next_code)
    assert not has_second_factor(max_)
