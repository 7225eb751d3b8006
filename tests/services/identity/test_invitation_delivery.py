"""Delivering an issued invitation as a use case, without NiceGUI: SMTP outside any transaction, then its outcome
recorded for the team list."""

import pytest

from models import DeliveryStatus, Invitation, Role, User
from services.acting import SCOPES
from services.db import read_scope, write_scope
from services.identity import invitations
from tests import smtp_server as smtp
from tests.factories import make_organization, make_user
from tests.smtp_server import DroppingServer, SmtpServer, point_settings_at

mail_env, smtp_server, dropping_smtp_server = smtp.mail_env, smtp.smtp_server, smtp.dropping_smtp_server  # fixtures


def make_admin() -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme Support'), role=Role.ADMIN)


@pytest.fixture
def admin(mail_env: SmtpServer, database: None) -> User:
    return make_admin()


@pytest.fixture
def failing_mail_env(dropping_smtp_server: DroppingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings pointing at a mail server that drops every connection; request it before `database`."""
    point_settings_at(monkeypatch, dropping_smtp_server.host, dropping_smtp_server.port)


@pytest.fixture
def admin_with_a_failing_mail_server(failing_mail_env: None, database: None) -> User:
    return make_admin()


def issue(admin: User) -> invitations.IssuedInvitation:
    with write_scope() as session:
        return invitations.invite_member(session=session, actor=admin, email='grace@example.com', role='member')


def stored(issued: invitations.IssuedInvitation) -> Invitation:
    with read_scope() as session:
        return session.get_one(Invitation, issued.invitation_id)


def test_a_delivered_invitation_is_mailed_and_marked_sent(admin: User, mail_env: SmtpServer) -> None:
    issued = issue(admin)
    assert invitations.deliver_invitation(scopes=SCOPES, issued=issued) == DeliveryStatus.SENT
    (received,) = mail_env.wait_for(1)
    assert received.recipients == ['grace@example.com'] and received.links == [issued.link]
    assert stored(issued).delivery_status == DeliveryStatus.SENT


def test_a_failed_delivery_says_why_and_keeps_the_invitation(admin_with_a_failing_mail_server: User) -> None:
    issued = issue(admin_with_a_failing_mail_server)
    said = invitations.deliver_invitation(scopes=SCOPES, issued=issued)
    assert isinstance(said, str) and said != DeliveryStatus.SENT
    row = stored(issued)
    assert (row.delivery_status, row.last_error) == (DeliveryStatus.FAILED, said)
