"""Forgot password → email → new password, as a person does it; the old sessions end."""

from collections.abc import Callable
from urllib.parse import urlsplit

from nicegui import ui
from nicegui.testing import User

from tests import smtp_server as smtp
from tests.smtp_server import SmtpServer
from tests.ui import helpers
from tests.ui.helpers import ADMIN_EMAIL
from tests.ui.test_team_flow import browser, eventually, follow_server_navigation

OLD_PASSWORD = 'correct horse battery'
NEW_PASSWORD = 'a completely new password'

mail_env, smtp_server = smtp.mail_env, smtp.smtp_server  # fixtures


async def set_up_organization(user: User) -> None:
    await helpers.set_up_organization(user, password=OLD_PASSWORD)


async def ask_for_link(visitor: User, email: str) -> None:
    await visitor.open('/login')
    visitor.find('Forgot password?').click()
    await visitor.should_see('Reset your password')
    visitor.find('Email').type(email)
    visitor.find('Send reset link').click()
    await visitor.should_see(f'If an account exists for {email}, we have emailed it a link')


async def sign_in(visitor: User, password: str) -> None:
    await visitor.open('/login')
    visitor.find('Email').type(ADMIN_EMAIL)
    visitor.find('Password').type(password)
    visitor.find(kind=ui.button, content='Sign in').click()


async def test_reset_by_email_ends_other_sessions(
    mail_env: SmtpServer, user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    opened = follow_server_navigation(user)  # the admin's dashboard stays open in this browser

    visitor = create_user()
    await ask_for_link(visitor, ADMIN_EMAIL.upper())
    (received,) = mail_env.wait_for(1)
    assert received.recipients == [ADMIN_EMAIL]
    assert received.subject == 'Reset your CX Toolbox password for Acme Support'
    (link,) = received.links
    assert received.content_types == ['text/plain', 'text/html'] and link in received.html

    await visitor.open(urlsplit(link).path)
    await visitor.should_see('Choose a new password')
    browser(visitor).find('New password').type('too short')
    visitor.find('Reset password').click()
    await visitor.should_see('Use at least 10 characters')
    visitor.find('New password').clear().type(NEW_PASSWORD)
    visitor.find('Reset password').click()
    await visitor.should_see(f'Signed in as {ADMIN_EMAIL}')

    # The dashboard that was open elsewhere went to /login, and its cookie no longer works.
    await eventually(lambda: bool(opened))
    assert opened == ['/login']
    await user.should_see('Sign in')
    await user.open('/')
    await user.should_see('Forgot password?')

    # The link works once; the old password is gone, the new one works.
    await visitor.open(urlsplit(link).path)
    await visitor.should_see('This reset link has already been used')
    await visitor.should_not_see('Reset password')
    stranger = create_user()
    await sign_in(stranger, OLD_PASSWORD)
    await stranger.should_see('Invalid email or password')
    await sign_in(stranger, NEW_PASSWORD)
    await stranger.should_see(f'Signed in as {ADMIN_EMAIL}')


async def test_unknown_address_gets_the_same_answer_and_no_mail(mail_env: SmtpServer, user: User) -> None:
    await set_up_organization(user)
    user.find('Sign out').click()
    await user.should_see('Sign in')
    await ask_for_link(user, 'nobody@example.com')
    await ask_for_link(user, ADMIN_EMAIL)
    (received,) = mail_env.wait_for(1)
    assert received.recipients == [ADMIN_EMAIL]  # one mail: for the account that exists


async def test_a_made_up_link_resets_nothing(user: User) -> None:
    await set_up_organization(user)
    await user.open('/reset-password/not-a-real-token')
    await user.should_see('This reset link is not valid')
    await user.should_not_see('Reset password')
    await user.should_see('Request a new link')


async def test_without_a_mail_server_the_page_says_so(user: User) -> None:
    await user.open('/forgot-password')
    await user.should_see('This server has no mail server configured')
    await user.should_see('Ask an admin of your organization')  # they can copy a one-time reset link
    await user.should_not_see('Send reset link')  # no form whose email would never arrive


async def test_the_answer_and_a_missing_email_are_announced(mail_env: SmtpServer, user: User) -> None:
    await user.open('/forgot-password')
    user.find('Send reset link').click()
    await user.should_see('Enter your email')
    (field,) = user.find('Email').elements
    assert field.props['aria-invalid'] == 'true'  # the field itself is marked, and Quasar announces its error
    user.find('Email').type('someone@example.com')
    user.find('Send reset link').click()
    await user.should_see('If an account exists for someone@example.com')
    (answer,) = user.find(marker='reset-answer').elements
    assert answer.props['role'] == 'alert'
    assert 'aria-invalid' not in field.props
