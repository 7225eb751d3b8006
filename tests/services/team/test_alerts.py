"""Security alerts: after the change commits, every admin who has not turned them off gets a mail from the real
test SMTP server's point of view; a failed send changes nothing, and a change that rolls back sends nothing."""

import logging
from datetime import timedelta

import pytest
from sqlmodel import select

from models import ApiKey, AuditAction, Organization, Role, User
from models.base import utcnow
from services import bus, config
from services.db import read_scope, write_scope
from services.keys import api_keys
from services.operations import operators
from services.team import alerts, members
from tests import smtp_server as smtp
from tests.factories import acting, make_organization, make_user
from tests.smtp_server import SmtpServer, free_port, point_settings_at

smtp_server = smtp.smtp_server  # fixture
mail_env = smtp.mail_env  # fixture

ADDRESS = '203.0.113.7'


class Team:
    def __init__(self) -> None:
        with write_scope() as session:
            organization = make_organization(session, name='Acme Support')
            self.ada = make_user(session, organization=organization, email='ada@example.com', name='Ada')
            self.bob = make_user(session, organization=organization, email='bob@example.com', name='Bob')
            self.max = make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER)
            outsider = make_organization(session, name='Other')
            make_user(session, organization=outsider, email='eve@example.com')
            api_keys.generate_key(session=session, actor=self.ada)


@pytest.fixture
def team(mail_env: SmtpServer, database: None) -> Team:
    made = Team()
    alerts.wait_until_sent()
    return made


def reveal(actor: User) -> str:
    with write_scope() as session:
        return api_keys.reveal_key(session=session, actor=acting(session, actor, ip=ADDRESS))


def rotate(actor: User) -> str:
    with write_scope() as session:
        return api_keys.rotate_key(session=session, actor=acting(session, actor, ip=ADDRESS), grace=timedelta(hours=1))


def received(server: SmtpServer) -> dict[str, str]:
    """recipient -> the text part, once every alert handed over so far is sent."""
    alerts.wait_until_sent()
    return {mail.recipients[0]: mail.text for mail in server.messages}


def test_every_admin_is_told_who_revealed_the_key_when_and_from_where(team: Team, mail_env: SmtpServer) -> None:
    key = reveal(team.ada)
    mails = mail_env.wait_for(2)
    assert sorted(mail.recipients[0] for mail in mails) == ['ada@example.com', 'bob@example.com']
    mail = mails[0]
    assert mail.subject == 'Security alert: The API key was revealed (Acme Support)'
    assert 'Who: ada@example.com' in mail.text
    assert f'From: {ADDRESS}' in mail.text
    assert f'When: {utcnow():%Y-%m-%d %H:}' in mail.text
    assert f'Key: {api_keys.mask(key[-4:])}' in mail.text
    assert 'http://dashboard.test/?tab=activity' in mail.text
    assert 'href="http://dashboard.test/?tab=activity"' in mail.html
    assert key not in mail.text + mail.html  # the key itself never travels by mail


def test_admins_are_told_about_a_rotation(team: Team, mail_env: SmtpServer) -> None:
    rotate(team.bob)
    mails = received(mail_env)
    assert set(mails) == {'ada@example.com', 'bob@example.com'}
    assert all('The API key was rotated in Acme Support' in text for text in mails.values())
    assert all('Who: bob@example.com' in text for text in mails.values())


def test_whoever_turned_alerts_off_gets_none(team: Team, mail_env: SmtpServer) -> None:
    with write_scope() as session:
        alerts.set_alerts_enabled(session=session, actor=acting(session, team.bob), enabled=False)
    with read_scope() as session:
        assert not alerts.alerts_enabled(session=session, actor=team.bob)
    reveal(team.ada)
    rotate(team.ada)
    mails = received(mail_env)
    assert list(mails) == ['ada@example.com']
    assert len(mail_env.messages) == 2


def test_admins_are_told_when_someone_becomes_admin_or_an_admin_is_removed(team: Team, mail_env: SmtpServer) -> None:
    def change_role(member: User, role: Role) -> None:
        with write_scope() as session:
            members.change_role(session=session, actor=acting(session, team.ada), member_id=member.id or 0, role=role)

    change_role(team.max, Role.ADMIN)
    subjects = sorted((mail.recipients[0], mail.subject) for mail in mail_env.wait_for(3))
    assert subjects == [
        (email, 'Security alert: max@example.com became an admin (Acme Support)')
        for email in ('ada@example.com', 'bob@example.com', 'max@example.com')
    ]
    with write_scope() as session:
        members.remove_member(session=session, actor=acting(session, team.ada), member_id=team.bob.id or 0)
    alerts.wait_until_sent()
    later = [(mail.recipients[0], mail.subject) for mail in mail_env.messages[3:]]
    assert sorted(later) == [
        (email, 'Security alert: The admin bob@example.com was removed (Acme Support)')
        for email in ('ada@example.com', 'max@example.com')
    ]


def test_an_admin_made_member_is_an_alert_a_member_removed_is_none(team: Team, mail_env: SmtpServer) -> None:
    with write_scope() as session:
        members.change_role(
            session=session, actor=acting(session, team.ada), member_id=team.bob.id or 0, role=Role.MEMBER
        )
    alerts.wait_until_sent()  # only Ada is an admin now
    assert [(mail.recipients[0], mail.subject) for mail in mail_env.messages] == [
        ('ada@example.com', 'Security alert: bob@example.com is no longer an admin (Acme Support)')
    ]
    with write_scope() as session:
        members.remove_member(session=session, actor=acting(session, team.ada), member_id=team.max.id or 0)
    alerts.wait_until_sent()
    assert len(mail_env.messages) == 1


def test_a_change_that_rolls_back_sends_nothing(team: Team, mail_env: SmtpServer) -> None:
    with pytest.raises(RuntimeError), write_scope() as session:
        api_keys.reveal_key(session=session, actor=acting(session, team.ada, ip=ADDRESS))
        session.flush()
        raise RuntimeError('something after the reveal failed')
    assert received(mail_env) == {}


def test_the_change_stays_when_the_mail_server_is_down(
    team: Team, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    point_settings_at(monkeypatch, '127.0.0.1', free_port())  # nothing listens there
    config.configure(config.load_settings())
    with caplog.at_level(logging.WARNING, logger='services.team.alerts'):
        new_key = rotate(team.ada)
        alerts.wait_until_sent()
    with read_scope() as session:
        active = session.exec(select(ApiKey).where(ApiKey.organization_id == team.ada.organization_id)).all()
    assert api_keys.hash_key(new_key) in {key.key_hash for key in active if key.expires_at is None}
    failures = [record.getMessage() for record in caplog.records if record.name == 'services.team.alerts']
    assert len(failures) == 2 and all('Connection refused' in message for message in failures)


def test_without_a_mail_server_nothing_is_sent(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session))
        api_keys.generate_key(session=session, actor=admin)
    assert not config.current_settings().mail_configured
    assert (
        alerts.dispatch(
            [
                bus.Recorded(
                    organization_id=admin.organization_id,
                    actor_id=None,
                    actor_email=None,
                    action=AuditAction.API_KEY_REVEALED,
                )
            ]
        )
        is None
    )
    reveal(admin)  # and the reveal works as ever
    with read_scope() as session:
        assert session.get(Organization, admin.organization_id) is not None


def test_an_admin_made_on_the_command_line_is_announced(team: Team, mail_env: SmtpServer) -> None:
    with write_scope() as session:
        operators.create_admin(
            session=session, email='max@example.com', name='Max', organization_id=team.max.organization_id
        )
    mails = received(mail_env)
    assert set(mails) == {'ada@example.com', 'bob@example.com', 'max@example.com'}
    assert all('max@example.com was made an admin from the command line' in text for text in mails.values())
    assert all('Who: command line\nWhen: ' in text and 'From: the server itself' in text for text in mails.values())
