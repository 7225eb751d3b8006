"""The `Passkeys` card on the Security page and `/login`'s passkey button, in the simulated browser (the ceremony
itself needs a real browser: tests/browser/test_passkeys.py)."""

import pytest
from nicegui.testing import User
from sqlmodel import Session, select

from models import AuditAction, AuditEvent, Passkey
from models import User as Account
from services.identity import passkeys
from tests.passkey_authenticator import SoftAuthenticator
from tests.ui.helpers import (
    ADMIN_EMAIL,
    PASSWORD,
    button,
    from_database,
    in_database,
    password_entered_minutes_ago,
    set_up_organization,
)

PUBLIC_URL = 'http://localhost:8080'


@pytest.fixture
def localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passkeys need a domain name: the app believes it is at http://localhost:8080 (set before main.py loads)."""
    monkeypatch.setenv('CXT_PUBLIC_URL', PUBLIC_URL)


def _add_passkey(session: Session, name: str) -> None:
    admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
    slot = passkeys.ChallengeSlot()
    options = passkeys.registration_options(session=session, actor=admin, challenge=slot.issue())
    credential = SoftAuthenticator(origin=PUBLIC_URL).create(options)
    passkeys.add_passkey(session=session, actor=admin, name=name, credential=credential, challenge=slot.take())


async def test_passkeys_are_listed_and_removal_asks_for_the_password(localhost: None, user: User) -> None:
    await set_up_organization(user)
    await user.open('/security')
    await user.should_see('Passkeys')
    await user.should_see(marker='no-passkeys')
    await in_database(lambda session: _add_passkey(session, 'Work laptop'))
    await user.open('/security')
    await user.should_see('Work laptop')
    await user.should_see('last used never')

    await password_entered_minutes_ago(11)
    button(user, 'Remove').click()
    await user.should_see('Confirm your password')
    user.find(marker='sudo-password').type(PASSWORD)
    user.find(marker='confirm-password').click()
    await user.should_see('Passkey “Work laptop” removed. It no longer signs in.')
    await user.should_see(marker='no-passkeys')
    assert await from_database(lambda session: session.exec(select(Passkey)).all()) == []
    actions = await from_database(lambda session: session.exec(select(AuditEvent.action, AuditEvent.target)).all())
    assert (AuditAction.PASSKEY_REMOVED, 'Work laptop') in actions


async def test_adding_asks_for_a_name_after_a_recent_password(localhost: None, user: User) -> None:
    await set_up_organization(user)
    await user.open('/security')
    await password_entered_minutes_ago(11)
    button(user, 'Add a passkey').click()
    await user.should_see('Confirm your password')
    user.find(marker='sudo-password').type(PASSWORD)
    user.find(marker='confirm-password').click()
    await user.should_see(marker='passkey-name')
    await user.should_see(marker='create-passkey')
    button(user, 'Cancel').click()
    await user.should_not_see(marker='create-passkey')


async def test_login_offers_a_passkey(localhost: None, user: User) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await user.should_see('Sign in with a passkey')


async def test_on_an_ip_address_passkeys_are_explained_not_offered(user: User) -> None:
    await set_up_organization(user)
    await user.open('/security')
    await user.should_see(marker='passkeys-unavailable')
    await user.should_not_see('Add a passkey')
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await user.should_not_see('Sign in with a passkey')
