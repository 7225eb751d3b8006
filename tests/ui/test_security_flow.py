"""The `Security` page: a person's own sessions, signing one or all of them out, and changing the password."""

from collections.abc import Callable

from nicegui.testing import User
from sqlmodel import Session, select

from models import AuditAction, AuditEvent, BrowserSession
from models import User as Account
from services.identity import sessions
from tests.ui.helpers import (
    ADMIN_EMAIL,
    PASSWORD,
    button,
    from_database,
    in_database,
    open_handoff,
    set_up_organization,
    sign_in,
)
from ui import open_pages
from ui.session import start_url

NEW_PASSWORD = 'a brand new passphrase'


async def second_browser(create_user: Callable[[], User]) -> User:
    """Another browser signed in as the admin (its sign-in made through the services, as the sign-in page does)."""

    def start(session: Session) -> str:
        admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
        return sessions.start(session=session, user=admin, ip='192.0.2.7', user_agent='Other browser')

    other = create_user()
    await open_handoff(other, start_url(await in_database(start)))
    await other.should_see(f'Signed in as {ADMIN_EMAIL}')
    return other


async def session_ids() -> list[int]:
    rows = await from_database(lambda session: session.exec(select(BrowserSession.id)).all())
    return sorted(row for row in rows if row is not None)


async def test_sessions_are_listed_and_another_browser_can_be_signed_out(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    other = await second_browser(create_user)
    first, second = await session_ids()
    await user.open('/security')
    await user.should_see('Active sessions')
    await user.should_see(marker='current-session')
    await user.should_see(marker=f'end-session-{second}')

    user.find(marker=f'end-session-{second}').click()
    await user.should_see('That browser is signed out')
    assert await session_ids() == [first]
    await other.open('/')
    await other.should_see('Forgot password?')


async def test_sign_out_everywhere(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    other = await second_browser(create_user)
    await user.open('/security')
    button(user, 'Sign out everywhere').click()
    await user.should_see('Sign out everywhere?')  # asked first: this browser is signed out too
    assert len(await session_ids()) == 2
    user.find(marker='confirm-sign-out-everywhere').click()
    await user.should_see('You are signed out everywhere')
    assert await session_ids() == []
    await other.open('/')
    await other.should_see('Forgot password?')


async def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    other = await second_browser(create_user)
    await user.open('/security')
    user.find(marker='current-password').type('not my password')
    user.find(marker='new-password').type(NEW_PASSWORD)
    button(user, 'Change password').click()
    await user.should_see('Wrong password')

    user.find(marker='current-password').clear().type(PASSWORD)
    button(user, 'Change password').click()
    await user.should_see('Password changed. Other browsers are signed out.')
    await other.open('/')
    await other.should_see('Forgot password?')
    await user.open('/')
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')  # this browser stays signed in

    actions = await from_database(lambda session: [event.action for event in session.exec(select(AuditEvent))])
    assert AuditAction.PASSWORD_CONFIRM_FAILED in actions and AuditAction.PASSWORD_CHANGED in actions
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await sign_in(user, ADMIN_EMAIL, NEW_PASSWORD)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')


async def test_the_security_page_needs_sign_in(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await user.open('/security')
    await user.should_see('Forgot password?')


async def test_a_removed_member_is_not_welcomed_back(user: User) -> None:
    await set_up_organization(user)
    await user.open('/')
    button(user, 'Sign out').click()
    await user.should_see('Welcome back')
    await user.open(open_pages.removed_url('Acme Support'))
    await user.should_see('You were removed from Acme Support')
    await user.should_not_see('Welcome back')
