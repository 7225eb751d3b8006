"""What a keyboard or screen-reader user relies on, as far as the simulated browser can tell: named controls, real
headings, dialogs named by their title, messages in live regions, and the pages a locked-out person needs.

Focus, the focus ring and what axe-core measures are checked in a real browser: tests/browser/test_accessibility.py.
"""

import asyncio
import contextlib

from nicegui import ui
from nicegui.testing import User

from services.errors import InvalidCredentials
from tests.factories import sign_in
from tests.ui.helpers import ADMIN_EMAIL, button, password_entered_minutes_ago, set_up_organization
from ui.components.forms import PasswordInput
from ui.theme import Heading


def headings(user: User, level: int) -> list[str]:
    return [element.text for element in user.find(kind=Heading).elements if element.tag == f'h{level}']


def only_label(user: User, marker: str) -> ui.label:
    (element,) = user.find(kind=ui.label, marker=marker).elements
    return element


async def test_the_password_toggle_is_a_button_named_by_what_it_does(user: User) -> None:
    await set_up_organization(user)
    user.find('Sign out').click()
    await user.should_see('Welcome back')
    (field,) = user.find(kind=PasswordInput).elements
    toggle = field.toggle_button
    assert field.props['type'] == 'password'
    assert field._toggle_name.text == 'Show password'
    assert toggle.props['aria-pressed'] == 'false'

    user.find(marker='password-toggle').click()
    assert field.props['type'] == 'text'
    assert field._toggle_name.text == 'Hide password'
    assert toggle.props['aria-pressed'] == 'true'
    assert toggle.props['title'] == 'Hide password'

    user.find(marker='password-toggle').click()
    assert field.props['type'] == 'password'
    assert field._toggle_name.text == 'Show password'
    assert toggle.props['aria-pressed'] == 'false'


async def test_every_password_field_has_the_named_toggle(user: User) -> None:
    await user.open('/setup')
    assert len(user.find(kind=PasswordInput).elements) == 1
    await set_up_organization(user)
    await user.open('/forgot-password')  # no password here
    await user.open('/security')
    assert {field.props['label'] for field in user.find(kind=PasswordInput).elements} >= {
        'Current password',
        'New password',
    }
    assert not [
        field
        for field in user.find(kind=ui.input).elements
        if field.props.get('type') == 'password' and not isinstance(field, PasswordInput)
    ]  # no password field with Quasar's bare icon


async def test_one_h1_per_page_and_h2_card_titles(user: User) -> None:
    await user.open('/setup')
    assert headings(user, 1) == ['Set up CX Toolbox']
    await set_up_organization(user)
    assert headings(user, 1) == ['Dashboard']
    await user.open('/help/sidekick')
    assert headings(user, 1) == ['Sidekick']
    await user.open('/security')
    assert headings(user, 1) == ['Security']
    assert {'Active sessions', 'Change password'} <= set(headings(user, 2))
    user.find('Sign out').click()
    await user.should_see('Welcome back')
    assert headings(user, 1) == ['Welcome back']
    await user.open('/forgot-password')
    assert headings(user, 1) == ['Reset your password']
    await user.open('/invite/not-a-real-token')
    assert headings(user, 1) == ['Invitation']


async def test_the_password_dialog_is_named_by_its_title_which_says_what_it_guards(user: User) -> None:
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    button(user, 'Hide API Key').click()
    await password_entered_minutes_ago(11)
    button(user, 'Reveal API Key').click()
    await user.should_see('Confirm your password to reveal the API key')

    (dialog,) = [element for element in user.find(kind=ui.dialog).elements if element.value]
    (title,) = [element for element in dialog.descendants() if isinstance(element, Heading)]
    assert title.text == 'Confirm your password to reveal the API key'
    assert dialog.props['aria-labelledby'] == title.html_id
    assert any(isinstance(element, PasswordInput) for element in dialog.descendants())

    button(user, 'Cancel').click()
    await user.should_not_see('Confirm your password to reveal the API key')


async def test_sign_in_errors_and_the_lockout_are_in_a_live_region(user: User) -> None:
    await set_up_organization(user)
    user.find('Sign out').click()
    await user.should_see('Welcome back')
    await user.should_not_see(marker='login-error')  # nothing to say yet

    user.find('Email').type(ADMIN_EMAIL)
    user.find('Password').type('not the password').trigger('keydown.enter')
    await user.should_see('Invalid email or password')
    message = only_label(user, 'login-error')
    assert message.props['role'] == 'alert' and message.text == 'Invalid email or password'

    await asyncio.to_thread(_fail_four_more_times)
    user.find('Password').clear().type('not the password either').trigger('keydown.enter')
    await user.should_see('Too many failed attempts. Try again in 15 minutes.')
    assert only_label(user, 'login-error') is message and message.props['role'] == 'alert'


def _fail_four_more_times() -> None:
    for _ in range(4):
        with contextlib.suppress(InvalidCredentials):
            sign_in(ADMIN_EMAIL, 'wrong password!')


async def test_troubleshooting_is_readable_without_signing_in(user: User) -> None:
    await set_up_organization(user)
    user.find('Sign out').click()
    await user.should_see('Welcome back')

    await user.open('/help/troubleshooting')
    await user.should_see('Nobody can sign in')
    await user.should_see('ask an admin of your organization')
    await user.should_see('← Back to sign in')
    await user.should_not_see('Signed in as')
    # The other help pages are about the dashboard: they still ask to sign in first.
    await user.open('/help/sidekick')
    await user.should_see('Welcome back')


async def test_forgot_password_without_a_mail_server_says_to_ask_an_admin(user: User) -> None:
    await user.open('/forgot-password')
    await user.should_see('This server has no mail server configured')
    await user.should_see('Ask an admin of your organization')
    await user.should_see('copy a one-time reset link for you')
    await user.should_not_see('Send reset link')  # nothing would arrive
    await user.should_see('Troubleshooting')


async def test_an_unknown_invitation_link_says_a_newer_one_may_have_been_sent(user: User) -> None:
    await user.open('/invite/not-a-real-token')
    await user.should_see('This invitation link is not valid')
    await user.should_see('A newer invitation may have been sent to you')
    await user.should_not_see('Accept invitation')
