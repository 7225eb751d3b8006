"""A sign-in waiting for its second step, and a reset link, outlive what should end them on main: a password change,
`Sign out everywhere` and a password reset each end every pending sign-in of the account, and a password change or
reset ends every reset link issued before it."""

from collections.abc import Callable

import pytest

from models import LinkState, User
from services.db import write_scope
from services.identity import auth, password_reset, sessions, two_factor
from tests.factories import make_organization, make_user


@pytest.fixture
def account(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session))


def waiting_sign_in(user: User) -> str:
    """Someone typed the right password in another browser and is now at the code step: its pending cookie token."""
    with write_scope() as session:
        code = two_factor.begin_pending(session=session, user=user, ip='198.51.100.7', user_agent='Elsewhere')
    with write_scope() as session:
        token = two_factor.complete_pending_handoff(session=session, code=code)
    assert token is not None
    return token


def reset_link_token(user: User) -> str:
    with write_scope() as session:
        issued = password_reset.request_reset(session=session, email=user.email)
    assert issued is not None
    return issued.link.rsplit('/', 1)[1]


def still_waiting(token: str) -> bool:
    with write_scope() as session:
        return two_factor.pending_step(session=session, token=token) is not None


def link_state(token: str) -> LinkState:
    with write_scope() as session:
        return password_reset.token_state(session=session, token=token)


def change_password(user: User) -> None:
    with write_scope() as session:
        auth.change_password(
            session=session, user=user, password_hash=auth.hash_password('a brand new passphrase'), keep_session_id=None
        )


def sign_out_everywhere(user: User) -> None:
    with write_scope() as session:
        assert user.id is not None
        sessions.end_all(session=session, user_id=user.id)


def reset_password(user: User) -> None:
    token = reset_link_token(user)
    with write_scope() as session:
        password_reset.reset_password(session=session, token=token, password_hash=auth.hash_password('another pass 1'))


@pytest.mark.parametrize('ending', [change_password, sign_out_everywhere, reset_password])
def test_a_sign_in_waiting_for_its_code_ends(account: User, ending: Callable[[User], None]) -> None:
    pending = waiting_sign_in(account)
    assert still_waiting(pending)
    ending(account)
    assert not still_waiting(pending), f'the code step still waits after {ending.__name__}'


def test_reset_links_issued_before_a_password_change_stop_working(account: User) -> None:
    older = reset_link_token(account)
    assert link_state(older) == LinkState.VALID
    change_password(account)
    assert link_state(older) != LinkState.VALID
    with write_scope() as session, pytest.raises(Exception, match='reset link'):
        password_reset.reset_password(session=session, token=older, password_hash=auth.hash_password('taken over 1'))
    newer = reset_link_token(account)
    assert link_state(newer) == LinkState.VALID, 'a link asked for after the change works'
