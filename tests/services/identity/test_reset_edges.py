"""Password reset at its edges: malformed tokens, and a link that outlives the account's membership."""

from urllib.parse import urlsplit

import pytest

from models import Role, User
from models.base import stored_id
from services.db import read_scope, write_scope
from services.errors import InvalidCredentials, ValidationFailed
from services.identity import auth, password_reset
from services.team import members
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in

NEW_PASSWORD = 'a brand new password'


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        return {
            'admin': make_user(session, organization=organization, role=Role.ADMIN),
            'member': make_user(session, organization=organization, role=Role.MEMBER, email='grace@example.com'),
        }


def token_of(issued: password_reset.IssuedReset) -> str:
    return urlsplit(issued.link).path.rsplit('/', 1)[1]


def reset(token: str) -> User:
    with write_scope() as session:
        return password_reset.reset_password(
            session=session, token=token, password_hash=auth.new_password_hash(NEW_PASSWORD)
        )


@pytest.mark.parametrize('token', ['', 'x' * 101])
def test_an_empty_or_overlong_token_is_not_valid_and_changes_nothing(team: dict[str, User], token: str) -> None:
    with write_scope() as session:
        assert password_reset.request_reset(session=session, email='grace@example.com') is not None
    with read_scope() as session:
        assert password_reset.token_state(session=session, token=token) == 'unknown'
    with pytest.raises(ValidationFailed, match='This reset link is not valid'):
        reset(token)
    assert sign_in('grace@example.com', DEFAULT_PASSWORD).email == 'grace@example.com'


def test_a_link_requested_before_removal_cannot_reset_the_removed_account(team: dict[str, User]) -> None:
    with write_scope() as session:
        issued = password_reset.request_reset(session=session, email='grace@example.com')
    assert issued is not None
    with write_scope() as session:
        members.remove_member(
            session=session, actor=acting(session, team['admin']), member_id=stored_id(team['member'])
        )
    with pytest.raises(ValidationFailed, match='This reset link is not valid'):
        reset(token_of(issued))
    with read_scope() as session:
        stored = session.get_one(User, team['member'].id)
    assert auth.check_password(DEFAULT_PASSWORD, stored.password_hash), 'the old password hash was kept'
    with pytest.raises(InvalidCredentials):
        sign_in('grace@example.com', NEW_PASSWORD)
