"""Two-factor sign-in as a person uses it: setting up the app on the Security page, signing in with a code or a
recovery code, a replayed or guessed code refused, and the organization's requirement."""

import asyncio
import time
from collections.abc import Callable

import pytest
from nicegui import ui
from nicegui.testing import User
from pyotp.totp import TOTP
from sqlmodel import Session, select

from models import AuditAction, AuditEvent, Organization, Role
from models import User as Account
from services.identity import attempts, auth, code_lock, passkeys, sessions, two_factor
from tests.factories import acting
from tests.passkey_authenticator import SoftAuthenticator
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
from tests.ui.test_team_flow import member_event, rows, should_see_in_row
from ui.session import start_url

MEMBER_EMAIL = 'max@example.com'


def code_for(secret: str, steps_ahead: int = 1) -> str:
    """A code the app shows (by default the next 30-second step's: the set-up used the current one)."""
    return TOTP(secret).at(time.time() + 30 * steps_ahead)


def wrong_code(secret: str) -> str:
    right = {code_for(secret, steps) for steps in (-1, 0, 1, 2)}
    return next(code for code in ('123456', '234567', '345678', '456789', '567890') if code not in right)


async def enrolled(email: str = ADMIN_EMAIL) -> tuple[str, list[str]]:
    """Set up an authenticator app for `email` through the services: its secret and recovery codes."""

    def enrol(session: Session) -> tuple[str, list[str]]:
        account = session.exec(select(Account).where(Account.email == email)).one()
        secret = two_factor.begin_enrolment(session=session, actor=acting(session, account)).secret
        codes = two_factor.confirm_enrolment(session=session, user=account, code=TOTP(secret).now())
        assert codes is not None
        return secret, codes

    return await in_database(enrol)


async def actions_recorded(action: AuditAction) -> list[AuditEvent]:
    return await from_database(
        lambda session: list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))
    )


async def sign_out(user: User) -> None:
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')


async def enter_code(user: User, code: str) -> None:
    user.find(kind=ui.input, marker='code').clear().type(code)
    button(user, 'Verify').click()


async def test_set_up_the_app_then_sign_in_with_a_code_once(user: User) -> None:
    await set_up_organization(user)
    await user.open('/security')
    await user.should_see('Set up authenticator app')
    button(user, 'Set up authenticator app').click()
    await user.should_see('Scan the QR code')
    await user.should_see(marker='qr-code')
    (shown,) = user.find(marker='totp-secret').elements
    secret = shown.text.replace(' ', '')  # type: ignore[attr-defined]

    user.find(kind=ui.input, marker='code').type(wrong_code(secret))
    button(user, 'Confirm').click()
    await user.should_see('Wrong code')
    user.find(kind=ui.input, marker='code').clear().type(TOTP(secret).now())
    button(user, 'Confirm').click()
    await user.should_see('Save your recovery codes')
    (listed,) = user.find(marker='recovery-codes').elements
    codes = [item.text for item in listed.default_slot.children]  # type: ignore[attr-defined]
    assert len(codes) == 10
    button(user, 'Download').click()
    downloaded = (await user.download.next()).text
    assert all(code in downloaded for code in codes)
    button(user, 'Done').click()
    await user.should_see('Authenticator app: on since')
    await user.should_see('Recovery codes left: 10 of 10')

    await sign_out(user)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Enter the 6-digit code from your authenticator app.')
    await user.should_not_see(f'Signed in as {ADMIN_EMAIL}')  # the password alone starts no session
    code = code_for(secret)
    await enter_code(user, code)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')

    await sign_out(user)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Authentication code')
    await enter_code(user, code)  # the same code again, inside its 30 seconds
    await user.should_see('Wrong code')
    await user.should_not_see(f'Signed in as {ADMIN_EMAIL}')
    assert len(await actions_recorded(AuditAction.TWO_FACTOR_FAILED)) == 2  # the set-up's wrong code, the replay


async def test_sign_in_with_a_recovery_code_uses_it_up(user: User) -> None:
    await set_up_organization(user)
    _, codes = await enrolled()
    await sign_out(user)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Use a recovery code')
    user.find('Use a recovery code').click()
    await user.should_see('Recovery code')
    await enter_code(user, codes[0])
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')
    await user.open('/security')
    await user.should_see('Recovery codes left: 9 of 10')

    await sign_out(user)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Use a recovery code')
    user.find('Use a recovery code').click()
    await user.should_see('Recovery code')
    await enter_code(user, codes[0])
    await user.should_see('Wrong code')
    assert len(await actions_recorded(AuditAction.RECOVERY_CODE_USED)) == 1


async def test_wrong_codes_lock_the_second_step_after_the_limit(user: User) -> None:
    await set_up_organization(user)
    secret, _ = await enrolled()
    await sign_out(user)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Authentication code')
    for _ in range(attempts.PAIR_LIMIT):
        await enter_code(user, wrong_code(secret))
        await user.should_see('Wrong code')
    await enter_code(user, code_for(secret))  # even the right code waits now
    await user.should_see('Too many failed attempts. Try again in 15 minutes.')
    await user.should_not_see(f'Signed in as {ADMIN_EMAIL}')
    assert len(await actions_recorded(AuditAction.TWO_FACTOR_FAILED)) == attempts.PAIR_LIMIT


async def test_the_organization_requirement_sends_a_member_to_set_up_the_app(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)

    def add_member(session: Session) -> str:
        organization = session.exec(select(Organization)).one()
        member = Account(
            organization_id=organization.id or 0,
            email=MEMBER_EMAIL,
            name='Max Member',
            password_hash=auth.hash_password(PASSWORD),
            role=Role.MEMBER,
        )
        session.add(member)
        session.flush()
        return sessions.start(session=session, user=member, ip='192.0.2.7', user_agent='Member browser')

    member_browser = create_user()
    await open_handoff(member_browser, start_url(await in_database(add_member)))
    await member_browser.should_see(f'Signed in as {MEMBER_EMAIL}')

    await user.open('/security')
    await user.should_not_see('Require two-factor authentication for everyone')  # a rule of the organization's
    await user.open('/organization')
    await user.should_see('Require two-factor authentication for everyone')
    user.find(marker='require-two-factor').click()
    await user.should_see('Set up your own authenticator app or passkey first')
    assert not (await from_database(lambda session: session.exec(select(Organization)).one())).require_two_factor
    await enrolled()
    await user.open('/organization')
    user.find(marker='require-two-factor').click()
    await user.should_see('Everyone now signs in with two-factor authentication')
    assert len(await actions_recorded(AuditAction.TWO_FACTOR_REQUIRED)) == 1

    await member_browser.open('/')  # his session stopped counting: he signs in again
    await member_browser.should_see('Forgot password?')
    await sign_in(member_browser, MEMBER_EMAIL)
    await member_browser.should_see('Your organization requires two-factor authentication.')
    await member_browser.should_see('Scan the QR code')
    await member_browser.open('/')  # nothing else until he has set it up
    await member_browser.should_see('Forgot password?')
    await sign_in(member_browser, MEMBER_EMAIL)
    await member_browser.should_see('Scan the QR code')
    (shown,) = member_browser.find(marker='totp-secret').elements
    secret = shown.text.replace(' ', '')  # type: ignore[attr-defined]
    member_browser.find(kind=ui.input, marker='code').type(TOTP(secret).now())
    button(member_browser, 'Confirm').click()
    await member_browser.should_see('Save your recovery codes')
    button(member_browser, 'Continue').click()
    await member_browser.should_see(f'Signed in as {MEMBER_EMAIL}')


async def test_new_recovery_codes_replace_the_old_ones_and_the_app_can_be_turned_off(user: User) -> None:
    await set_up_organization(user)
    _, old_codes = await enrolled()
    await user.open('/security')
    await user.should_see('Recovery codes left: 10 of 10')
    button(user, 'New recovery codes').click()
    await user.should_see('Save your recovery codes')
    (listed,) = user.find(marker='recovery-codes').elements
    new_codes = [item.text for item in listed.default_slot.children]  # type: ignore[attr-defined]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    button(user, 'Done').click()
    await user.should_see('Recovery codes left: 10 of 10')
    button(user, 'Turn off').click()
    await user.should_see('Two-factor authentication is off')
    await user.should_see('Set up authenticator app')
    await sign_out(user)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')  # the password alone again
    recorded = [AuditAction.RECOVERY_CODES_RENEWED, AuditAction.TWO_FACTOR_DISABLED]
    assert [len(await actions_recorded(action)) for action in recorded] == [1, 1]


async def test_an_admin_resets_a_members_second_factor_with_their_own_code(user: User) -> None:
    await set_up_organization(user)

    def add_member(session: Session) -> int:
        organization = session.exec(select(Organization)).one()
        member = Account(
            organization_id=organization.id or 0,
            email=MEMBER_EMAIL,
            name='Max Member',
            password_hash=auth.hash_password(PASSWORD),
            role=Role.MEMBER,
        )
        session.add(member)
        session.flush()
        return member.id or 0

    max_id = await in_database(add_member)
    await enrolled(MEMBER_EMAIL)
    admin_secret, _ = await enrolled()
    await user.open('/?tab=team')
    await user.should_see('Team Members')
    await should_see_in_row(user, 'member-table', max_id, 'two_factor', 'True')
    assert {row['email']: row['two_factor'] for row in rows(user, 'member-table')} == {
        ADMIN_EMAIL: False,
        MEMBER_EMAIL: True,
    }

    member_event(user, 'reset_two_factor', max_id)
    await user.should_see('Reset two-factor for Max Member')
    user.find(kind=ui.input, marker='code').type(wrong_code(admin_secret))
    user.find(marker='confirm-reset-2fa').click()
    await user.should_see('Wrong code')
    user.find(kind=ui.input, marker='code').clear().type(code_for(admin_secret))
    user.find(marker='confirm-reset-2fa').click()
    await user.should_see('Two-factor authentication reset for Max Member')
    (reset,) = await actions_recorded(AuditAction.TWO_FACTOR_RESET)
    assert (reset.actor_email, reset.target) == (ADMIN_EMAIL, MEMBER_EMAIL)
    assert not await from_database(lambda session: two_factor.has_second_factor(session=session, user_id=max_id))
    await user.should_not_see('Reset two-factor for Max Member')
    for _ in range(40):  # the list shows the change: nothing left to reset
        if not next(row for row in rows(user, 'member-table') if row['id'] == max_id)['two_factor']:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError('the team list still offers Reset two-factor')


@pytest.fixture
def localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passkeys need a domain name: the app believes it is at http://localhost:8080 (set before main.py loads)."""
    monkeypatch.setenv('CXT_PUBLIC_URL', 'http://localhost:8080')


async def test_the_second_step_offers_every_factor_the_account_has(localhost: None, user: User) -> None:
    """An account with an app and a passkey: after the password, `Authentication code`, `Use a passkey` and `Use a
    recovery code`; the code still finishes the sign-in."""
    await set_up_organization(user)
    secret, _ = await enrolled()
    await in_database(_add_passkey)
    await sign_out(user)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Authentication code')
    await user.should_see('Use a passkey')
    await user.should_see('Use a recovery code')
    await enter_code(user, code_for(secret))
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')


async def test_worn_down_codes_are_locked_and_the_page_says_what_to_do(user: User) -> None:
    await set_up_organization(user)
    secret, _ = await enrolled()
    await sign_out(user)

    def wear_down(session: Session) -> None:
        account = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
        for _ in range(code_lock.LOCK_AFTER):
            code_lock.count_failure(session=session, user=account, ip='198.51.100.7')

    await in_database(wear_down)
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see(marker='codes-locked')
    await user.should_see('Too many wrong codes were entered for this account')
    await user.should_not_see('Use a recovery code')
    await user.should_not_see(kind=ui.input, marker='code')  # nothing to type a code into
    assert secret


def _add_passkey(session: Session) -> None:
    admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
    slot = passkeys.ChallengeSlot()
    options = passkeys.registration_options(session=session, actor=admin, challenge=slot.issue())
    credential = SoftAuthenticator(origin='http://localhost:8080').create(options)
    passkeys.add_passkey(session=session, actor=admin, name='Laptop', credential=credential, challenge=slot.take())


async def test_the_organization_page_is_for_admins_only(user: User, create_user: Callable[[], User]) -> None:
    await set_up_organization(user)
    await user.open('/organization')
    await user.should_see('Sign-in rules')

    def add_member(session: Session) -> str:
        admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
        member = Account(
            organization_id=admin.organization_id,
            email=MEMBER_EMAIL,
            name='Max Member',
            password_hash=auth.hash_password(PASSWORD),
            role=Role.MEMBER,
        )
        session.add(member)
        session.flush()
        return sessions.start(session=session, user=member, ip='192.0.2.7', user_agent='Member browser')

    member_browser = create_user()
    await open_handoff(member_browser, start_url(await in_database(add_member)))
    await member_browser.should_see(f'Signed in as {MEMBER_EMAIL}')
    await member_browser.open('/organization')
    await member_browser.should_see('Dashboard Settings')  # sent to the dashboard
    await member_browser.should_not_see('Sign-in rules')
