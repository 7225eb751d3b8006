"""`Email me about key and team changes` on the Security page: off, the admin's own alerts stop; on again, they
come back (received by the real test SMTP server)."""

import asyncio

from nicegui.testing import User
from sqlmodel import Session, select

from models import User as Account
from services.keys import api_keys
from services.team import alerts
from tests import smtp_server as smtp
from tests.factories import acting
from tests.smtp_server import SmtpServer
from tests.ui.helpers import ADMIN_EMAIL, from_database, in_database, set_up_organization

smtp_server = smtp.smtp_server  # fixture
mail_env = smtp.mail_env  # fixture


def admin(session: Session) -> Account:
    return session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()


def generate(session: Session) -> str:
    return api_keys.generate_key(session=session, actor=admin(session))


def reveal(session: Session) -> str:
    return api_keys.reveal_key(session=session, actor=acting(session, admin(session), ip='192.0.2.9'))


async def alerts_sent() -> None:
    await asyncio.to_thread(alerts.wait_until_sent)


async def test_an_admin_turns_their_alerts_off_and_on_again(mail_env: SmtpServer, user: User) -> None:
    await set_up_organization(user)
    await in_database(generate)
    await user.open('/security')
    await user.should_see('Security alerts')
    await user.should_see('Email me about key and team changes')
    await user.should_not_see(marker='alerts-no-mail')

    user.find('Email me about key and team changes').click()
    await user.should_see('Security alerts off')
    assert not await from_database(lambda session: admin(session).alerts_enabled)
    await in_database(reveal)
    await alerts_sent()
    assert mail_env.messages == []

    user.find('Email me about key and team changes').click()
    await user.should_see('Security alerts on')
    await in_database(reveal)
    (mail,) = await asyncio.to_thread(mail_env.wait_for, 1)
    assert mail.recipients == [ADMIN_EMAIL]
    assert mail.subject == 'Security alert: The API key was revealed (Acme Support)'
    assert 'From: 192.0.2.9' in mail.text


async def test_without_a_mail_server_the_page_says_no_alerts_are_sent(user: User) -> None:
    await set_up_organization(user)
    await user.open('/security')
    await user.should_see('No mail server is configured, so no alerts are sent')
