"""Setting up an authenticator app on main: it needed no recent password (adding a passkey does), so a session left
open, or stolen, could add the thief's own app; and an unconfirmed secret was shown again to any other session of the
account for an hour, so whoever had another session could read the secret a person was about to confirm."""

from collections.abc import Callable

import pytest
from nicegui.testing import User
from pyotp.totp import TOTP
from sqlmodel import select

from models import User as Account
from services.db import write_scope
from services.errors import ReauthenticationRequired
from services.identity import two_factor
from tests.factories import acting, make_organization, make_user
from tests.ui.helpers import ADMIN_EMAIL, PASSWORD, from_database, password_entered_minutes_ago, set_up_organization


async def test_the_security_page_asks_for_the_password_before_showing_a_secret(user: User) -> None:
    await set_up_organization(user)
    await password_entered_minutes_ago(11)
    await user.open('/security')
    await user.should_see('Set up authenticator app')
    user.find('Set up authenticator app').click()
    await user.should_see('Confirm your password to set up an authenticator app')
    await user.should_not_see('Authentication code')
    secret_stored = await from_database(
        lambda session: two_factor.status(
            session=session, user=session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
        )
    )
    assert not secret_stored.app_on
    user.find(marker='sudo-password').type(PASSWORD)
    user.find(marker='confirm-password').click()
    await user.should_see('Authentication code')  # with the password, the set-up goes on


def test_the_service_refuses_without_a_recent_password(database: None) -> None:
    with write_scope() as session:
        person = make_user(session, organization=make_organization(session))
    for stale in (None, 11):
        with write_scope() as session, pytest.raises(ReauthenticationRequired):
            two_factor.begin_enrolment(session=session, actor=acting(session, person, password_minutes_ago=stale))


def test_another_session_never_sees_the_unconfirmed_secret(database: None) -> None:
    with write_scope() as session:
        person = make_user(session, organization=make_organization(session))

    begin: Callable[[], str] = lambda: _begin(person)  # noqa: E731
    first = begin()
    second = begin()  # another session (or whoever holds one) starts a set-up a minute later
    assert second != first, 'the secret being set up was handed to another session'
    with write_scope() as session:
        # The first set-up was replaced: its app's codes turn nothing on.
        assert not two_factor.confirm_enrolment(session=session, user=person, code=TOTP(first).now())
    with write_scope() as session:
        assert two_factor.confirm_enrolment(session=session, user=person, code=TOTP(second).now())


def _begin(person: Account) -> str:
    with write_scope() as session:
        return two_factor.begin_enrolment(session=session, actor=acting(session, person)).secret
