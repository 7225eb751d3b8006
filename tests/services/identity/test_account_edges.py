"""Accounts at their edges: a damaged stored hash, an overlong name, the password re-check of a removed member."""

import pytest
from sqlmodel import select

from models import LoginFailure, Role, User
from models.base import stored_id
from services.db import read_scope, write_scope
from services.errors import InvalidCredentials, ValidationFailed
from services.identity import auth
from services.team import members
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        return {
            'admin': make_user(session, organization=organization, role=Role.ADMIN),
            'member': make_user(session, organization=organization, role=Role.MEMBER),
        }


@pytest.mark.parametrize('damaged', ['', 'not-a-bcrypt-hash', '$2b$04$truncated'])
def test_a_damaged_stored_hash_is_a_failed_sign_in_not_a_crash(team: dict[str, User], damaged: str) -> None:
    member = team['member']
    with write_scope() as session:
        user = session.get_one(User, member.id)
        user.password_hash = damaged
        session.add(user)
    with pytest.raises(InvalidCredentials, match='Invalid email or password'):
        sign_in(member.email, DEFAULT_PASSWORD)
    with read_scope() as session:
        failures = session.exec(select(LoginFailure.email)).all()
    assert failures == [member.email], 'counted towards the lockout like any wrong password'


def test_names_are_limited_to_100_characters_after_collapsing_spaces() -> None:
    assert auth.validate_name('A' * 100) == 'A' * 100
    assert auth.validate_name(' '.join(['Ada'] * 25) + '   ' * 30) == ' '.join(['Ada'] * 25)  # 99 characters
    with pytest.raises(ValidationFailed, match='Use at most 100 characters') as raised:
        auth.validate_name('A' * 101)
    assert raised.value.field == 'name'
    with pytest.raises(ValidationFailed, match='Use at most 100 characters') as raised:
        auth.validate_first_admin(
            organization_name='Acme ' * 21, name='Ada', email='ada@example.com', password='long enough pw'
        )
    assert raised.value.field == 'organization'


def recheck(user: User, password: str) -> bool:
    """The `Confirm your password` dialog's re-check, step by step."""
    with write_scope() as session:
        attempt = auth.begin_password_confirmation(session=session, user=user, ip='192.0.2.1')
    password_ok = auth.check_attempt_password(attempt, password)
    with write_scope() as session:
        return auth.finish_password_confirmation(session=session, attempt=attempt, password_ok=password_ok, user=user)


def test_the_password_re_check_finds_no_password_for_a_removed_member(team: dict[str, User]) -> None:
    member = team['member']
    assert recheck(member, DEFAULT_PASSWORD)
    with write_scope() as session:
        members.remove_member(session=session, actor=acting(session, team['admin']), member_id=stored_id(member))
    # A page still open for the removed member asks for the password before a sensitive action: nothing matches.
    assert not recheck(member, DEFAULT_PASSWORD)
