"""A new admin's first minutes: setup, the dashboard, the key, the subdomains; and what a member sees."""

import asyncio
import re

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlmodel import Session, select

from models import ApiKey, BrowserSession, Role
from models import User as Account
from services.identity import auth
from tests.ui.helpers import (
    ADMIN_EMAIL,
    PASSWORD,
    button,
    in_database,
    password_entered_minutes_ago,
    set_up_organization,
    sign_in,
)
from ui.components import secret_field

KEY_PATTERN = re.compile(r'cxt_[A-Za-z0-9]{40}')


def key_field_value(user: User) -> str:
    value = user.find(kind=ui.input, marker='api-key').elements.pop().value
    assert value is not None
    return value


async def add_member(email: str = 'max@example.com') -> None:
    await in_database(lambda session: _add_member(session, email))


def _add_member(session: Session, email: str) -> None:
    admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
    session.add(
        Account(
            organization_id=admin.organization_id,
            email=email,
            name='Max Member',
            password_hash=auth.hash_password(PASSWORD),
            role=Role.MEMBER,
        )
    )


async def test_setup_leads_to_dashboard(user: User) -> None:
    await set_up_organization(user)
    await user.should_see('Acme Support')
    await user.should_see('Dashboard Settings')
    await user.should_see('User Management')
    await user.should_see('Activity')
    await user.should_see('Step 1: Generate API Key')
    await user.should_see('Generate API Key')
    await user.should_see('Subscription: none')
    await user.should_see('Sidekick')
    await user.should_see('Task Kanban')
    await user.should_see('Troubleshooting')


async def test_setup_is_closed_once_an_account_exists(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await user.open('/setup')
    await user.should_see('Forgot password?')  # redirected to /login
    await user.should_not_see('Create organization')


async def test_setup_rejects_a_short_password_at_the_field(user: User) -> None:
    await user.open('/setup')
    assert user.find('Password').elements.pop().props['hint'] == 'At least 10 characters'
    user.find('Organization name').type('Acme Support')
    user.find('Your name').type('Ada Admin')
    user.find('Email').type(ADMIN_EMAIL)
    user.find('Password').type('short')
    button(user, 'Create organization').click()
    await user.should_see('Use at least 10 characters')
    await user.should_not_see('Signed in as')


async def test_generate_reveal_hide_and_rotate(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    first_key = key_field_value(user)
    assert KEY_PATTERN.fullmatch(first_key), 'the new key is revealed right away'
    button(user, 'Hide API Key').click()
    masked = key_field_value(user)
    assert masked.startswith('cxt_•') and masked.endswith(first_key[-4:]) and first_key[4:-4] not in masked

    button(user, 'Reveal API Key').click()
    await user.should_see(first_key)
    await user.should_see('Copy')
    button(user, 'Copy').click()
    await user.should_see('API key copied')

    button(user, 'Rotate API Key').click()
    await user.should_see('stops working')
    await user.should_see('In 1 hour')
    await user.should_see('In 24 hours')
    await user.should_see('In 7 days')
    user.find(marker='confirm-rotate').click()  # 'Immediately' is the default
    await user.should_see('API key rotated')
    second_key = key_field_value(user)
    assert KEY_PATTERN.fullmatch(second_key) and second_key != first_key
    keys = await in_database(lambda session: session.exec(select(ApiKey)).all())
    assert len(keys) == 2 and sum(key.expires_at is None for key in keys) == 1

    user.find('Activity').click()
    await user.should_see(kind=ui.table, marker='activity-table')  # built when first opened
    expected = ['Rotated the API key', 'Revealed the API key', 'Generated the API key', 'Created the organization']
    for _ in range(50):
        rows = user.find(kind=ui.table, marker='activity-table').elements.pop().rows
        if [row['what'] for row in rows] == expected:
            break
        await asyncio.sleep(0.05)
    assert [row['what'] for row in rows] == expected
    assert rows[0]['who'] == ADMIN_EMAIL


async def test_rotation_with_grace_offers_early_revocation(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    button(user, 'Rotate API Key').click()
    await user.should_see('In 1 hour')
    user.find('In 1 hour').click()
    user.find(marker='confirm-rotate').click()
    await user.should_see('keeps working until')
    await user.should_see('Last used: never')
    button(user, 'Revoke old key now').click()
    # Nothing happens before the admin confirms a dialog that says what the old key still does.
    await user.should_see('Revoke the old key now?')
    await user.should_see('Old key: 0 requests in the last hour')
    user.find('Cancel').click()
    await user.should_not_see('Revoke the old key now?')
    await user.should_see('keeps working until')
    button(user, 'Revoke old key now').click()
    await user.should_see('Revoke the old key now?')
    user.find(marker='confirm-revoke').click()
    await user.should_see('no longer works')
    await user.should_not_see('keeps working until')


async def rotate_with_grace(user: User, *, notices: int) -> str:
    """Rotate with a one-hour grace window; the new key, as revealed right after (once `notices` grace notices
    show)."""
    button(user, 'Rotate API Key').click()
    await user.should_see('In 1 hour')
    user.find('In 1 hour').click()
    user.find(marker='confirm-rotate').click()
    await user.should_see('API key rotated')
    for _ in range(50):
        if (
            len(user._gather_elements(target=None, kind=ui.button, marker=None, content='Revoke old key now'))
            == notices
        ):
            break
        await asyncio.sleep(0.05)
    return key_field_value(user)


async def test_each_grace_notice_revokes_its_own_key_and_no_plaintext_comes_back(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    first = key_field_value(user)
    second = await rotate_with_grace(user, notices=1)
    current = await rotate_with_grace(user, notices=2)
    button(user, 'Hide API Key').click()
    assert key_field_value(user) != current

    notices = user.find(kind=ui.button, content='Revoke old key now').elements
    assert len(notices) == 2
    first_notice = next(button for button in notices if 'revoke-old-1' in button._markers)
    user.find(marker='revoke-old-1').click()
    await user.should_see('Revoke the old key now?')
    user.find(marker='confirm-revoke').click()
    await user.should_see(f'The old key cxt_{"•" * 16}{first[-4:]} no longer works')
    await user.should_see(f'The previous key cxt_{"•" * 16}{second[-4:]} keeps working until')
    assert first_notice.is_deleted or not first_notice.visible
    # The card was rebuilt, and the key it shows is still the mask: a plaintext key lives for one render only.
    assert key_field_value(user) != current and key_field_value(user).startswith('cxt_•')


async def test_revealed_key_masks_itself_again(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_field, 'REVEAL_SECONDS', 0.3)
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    # A key just made stays shown (the admin is pasting it elsewhere) and says so.
    await asyncio.sleep(0.8)
    assert KEY_PATTERN.fullmatch(key_field_value(user))
    (field,) = user.find(marker='api-key').elements
    assert isinstance(field, secret_field.SecretField)
    assert field.hint.text == secret_field.NEW_KEY_HINT
    button(user, 'Hide API Key').click()
    await user.should_see('Reveal API Key')
    # A revealed key counts down in its hint, then masks itself again.
    button(user, 'Reveal API Key').click()
    await user.should_see('Hide API Key')
    assert KEY_PATTERN.fullmatch(key_field_value(user))
    assert field.hint.text.startswith('Hidden again in ')
    await user.should_see('Reveal API Key')
    assert key_field_value(user).startswith('cxt_•')
    assert not field.hint.text and 'bottom-slots' not in field.props


async def test_stale_password_is_asked_for_before_reveal(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    button(user, 'Hide API Key').click()
    await password_entered_minutes_ago(11)
    button(user, 'Reveal API Key').click()
    await user.should_see('Confirm your password to reveal the API key')
    user.find(marker='sudo-password').type('wrong password!')
    user.find(marker='confirm-password').click()
    await user.should_see('Wrong password')
    user.find(marker='sudo-password').clear().type(PASSWORD)
    user.find(marker='confirm-password').click()
    for _ in range(50):  # the dialog closes and the reveal goes ahead
        if KEY_PATTERN.fullmatch(key_field_value(user)):
            break
        await asyncio.sleep(0.05)
    assert KEY_PATTERN.fullmatch(key_field_value(user))
    dialogs = user._gather_elements(target=None, kind=ui.dialog, marker=None, content=None)
    assert not any(dialog.value for dialog in dialogs), 'the password dialog closed'


async def test_subdomains_save_normalized_and_reject_invalid(user: User) -> None:
    await set_up_organization(user)
    await user.should_see('Step 2: Configure Kustomer Subdomains')
    user.find(marker='subdomain').type('https://ACME.kustomerapp.com/app/x')
    user.find(marker='sandbox-subdomain').type('acme-sandbox.kustomerapp.com')
    button(user, 'Save').click()
    await user.should_see('Subdomains saved')
    assert user.find(kind=ui.input, marker='subdomain').elements.pop().value == 'acme'
    assert user.find(kind=ui.input, marker='sandbox-subdomain').elements.pop().value == 'acme-sandbox'

    user.find(marker='sandbox-subdomain').clear().type('bad_name!')
    button(user, 'Save').click()
    await user.should_see('Not a valid subdomain')
    await user.open('/')
    await user.should_see('Step 2: Configure Kustomer Subdomains')
    assert user.find(kind=ui.input, marker='sandbox-subdomain').elements.pop().value == 'acme-sandbox', (
        'nothing was saved'
    )


async def test_member_sees_everything_read_only(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    await add_member()
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await sign_in(user, 'max@example.com')
    await user.should_see('Signed in as max@example.com')
    await user.should_see('Step 1: Generate API Key')
    assert key_field_value(user).startswith('cxt_•')
    await user.should_see('Subscription: none')
    await user.should_see('Kustomer Organization Sub Domain')
    await user.should_see('Ask an admin to rotate or reveal the key.')
    await user.should_not_see(kind=ui.input, marker='subdomain')  # the saved value as text, not a locked form
    for hidden in ('Reveal API Key', 'Rotate API Key', 'Manage Billing', 'Generate API Key', 'Save'):
        await user.should_not_see(kind=ui.button, content=hidden)
    await user.should_not_see('Activity')
    user.find('User Management').click()
    await user.should_see('Max Member')
    await user.should_see('Ada Admin')
    await user.should_see('You')


async def test_unauthenticated_visit_goes_to_login_and_back(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await user.open('/')
    await user.should_see('Forgot password?')
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')


@pytest.mark.parametrize('target', ['https://evil.example.com/', '//evil.example.com', '/\\evil.example.com'])
async def test_login_never_redirects_off_site(user: User, target: str) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await user.open(f'/login?redirect_to={target}')
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')


async def test_wrong_password_then_lockout(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    for _ in range(5):
        await sign_in(user, ADMIN_EMAIL, 'not the password')
        await user.should_see('Invalid email or password')
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Too many failed attempts. Try again in 15 minutes.')
    await user.should_not_see('Signed in as')


async def test_unknown_email_gets_the_same_message(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await sign_in(user, 'nobody@example.com')
    await user.should_see('Invalid email or password')


async def test_ended_session_is_refused_on_the_next_action(user: User) -> None:
    await set_up_organization(user)
    await in_database(_end_admin_sessions)
    button(user, 'Generate API Key').click()
    await user.should_see('Forgot password?')
    assert await in_database(lambda session: session.exec(select(ApiKey)).all()) == []


def _end_admin_sessions(session: Session) -> None:
    """As a sign-out in another process does: the session rows go."""
    account = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
    for row in session.exec(select(BrowserSession).where(BrowserSession.user_id == account.id)):
        session.delete(row)


async def test_help_pages_are_linked_and_need_sign_in(user: User) -> None:
    await set_up_organization(user)
    user.find('Troubleshooting').click()
    await user.should_see('A widget says the API key is invalid')
    button(user, 'Sign out').click()
    await user.should_see('Welcome back')  # the sign-in page (this help page itself mentions 'Forgot password?')
    await user.open('/help/sidekick')
    await user.should_see('Forgot password?')
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see('Sidekick runs inside Kustomer')


async def test_an_internal_mail_domain_can_set_up_and_sign_in(user: User) -> None:
    await user.open('/setup')
    user.find('Organization name').type('Acme Support')
    user.find('Your name').type('Ops')
    user.find('Email').type('ops@corp.local')
    user.find('Password').type(PASSWORD)
    button(user, 'Create organization').click()
    await user.should_see('Signed in as ops@corp.local')
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await sign_in(user, 'ops@corp.local')
    await user.should_see('Signed in as ops@corp.local')
