"""The bus: each typed event reaches the audit log, the alerts and every subscriber exactly once, after the commit;
a rolled-back change reaches nobody."""

from collections.abc import Iterator

import pytest
from sqlmodel import func, select

from models import AuditAction, AuditEvent, Role, User
from services import audit, bus, events
from services.db import read_scope, write_scope
from services.team import alerts, members
from tests import smtp_server as smtp
from tests.factories import acting, make_organization, make_user
from tests.smtp_server import SmtpServer

smtp_server = smtp.smtp_server  # fixture
mail_env = smtp.mail_env  # fixture


@pytest.fixture
def heard() -> Iterator[list[bus.Event]]:
    """Every event the bus delivers during the test, in order (a subscriber like the alerts and the open pages)."""
    delivered: list[bus.Event] = []
    bus.subscribe(delivered.append)
    yield delivered
    bus.unsubscribe(delivered.append)


def _team() -> tuple[User, User, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        ada = make_user(session, organization=organization, email='ada@example.com', role=Role.ADMIN)
        bob = make_user(session, organization=organization, email='bob@example.com', role=Role.ADMIN)
        max_ = make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER)
        return ada, bob, max_


def _make_admin(actor: User, member: User) -> User:
    assert member.id is not None
    with write_scope() as session:
        return members.change_role(session=session, actor=acting(session, actor), member_id=member.id, role=Role.ADMIN)


def _audit_rows(action: AuditAction) -> list[str | None]:
    with read_scope() as session:
        return list(session.exec(select(AuditEvent.target).where(AuditEvent.action == action)))


def test_a_role_change_reaches_the_audit_log_the_alerts_and_subscribers_once(
    mail_env: SmtpServer, database: None, heard: list[bus.Event]
) -> None:
    ada, _, max_ = _team()
    alerts.wait_until_sent()
    heard.clear()
    _make_admin(ada, max_)
    changed = [event for event in heard if isinstance(event, bus.RoleChanged)]
    assert len(changed) == 1
    assert (changed[0].email, changed[0].previous, changed[0].new) == ('max@example.com', Role.MEMBER, Role.ADMIN)
    assert changed[0].actor_email == 'ada@example.com'
    assert _audit_rows(AuditAction.MEMBER_ROLE_CHANGED) == ['max@example.com: member → admin']
    alerts.wait_until_sent()
    # Every admin once (ada and bob; max is an admin only from this change on, so is told too).
    recipients = sorted(mail.recipients[0] for mail in mail_env.messages)
    assert recipients == ['ada@example.com', 'bob@example.com', 'max@example.com']
    assert all('max@example.com became an admin' in mail.text for mail in mail_env.messages)


def test_a_removed_admin_is_announced_from_the_event_with_the_role_they_had(
    mail_env: SmtpServer, database: None, heard: list[bus.Event]
) -> None:
    ada, bob, _ = _team()
    alerts.wait_until_sent()
    heard.clear()
    assert bob.id is not None
    with write_scope() as session:
        members.remove_member(session=session, actor=acting(session, ada), member_id=bob.id)
    removed = [event for event in heard if isinstance(event, bus.MemberRemoved)]
    ended = [event for event in heard if isinstance(event, bus.SessionsEnded)]
    assert [(event.email, event.role) for event in removed] == [('bob@example.com', Role.ADMIN)]
    assert [event.user_id for event in ended] == [bob.id]
    assert _audit_rows(AuditAction.MEMBER_REMOVED) == ['bob@example.com']
    alerts.wait_until_sent()
    assert [mail.recipients[0] for mail in mail_env.messages] == ['ada@example.com']  # bob is no longer an admin
    assert 'The admin bob@example.com was removed' in mail_env.messages[0].text


def test_a_rolled_back_change_reaches_nobody(mail_env: SmtpServer, database: None, heard: list[bus.Event]) -> None:
    ada, _, max_ = _team()
    alerts.wait_until_sent()
    heard.clear()
    with pytest.raises(RuntimeError), write_scope() as session:
        assert max_.id is not None
        members.change_role(session=session, actor=acting(session, ada), member_id=max_.id, role=Role.ADMIN)
        raise RuntimeError('rolled back')
    alerts.wait_until_sent()
    assert heard == []
    assert _audit_rows(AuditAction.MEMBER_ROLE_CHANGED) == []
    assert mail_env.messages == []
    # The next committed change is delivered alone: nothing of the rolled-back one was kept for later.
    _make_admin(ada, max_)
    assert [type(event) for event in heard] == [bus.RoleChanged]


def test_a_savepoint_rolled_back_forgets_only_its_own_events(database: None, heard: list[bus.Event]) -> None:
    with write_scope() as session:
        bus.emit(session=session, event=bus.TeamChanged(organization_id=1))
        with pytest.raises(RuntimeError), session.begin_nested():
            bus.emit(session=session, event=bus.KeyChanged(organization_id=1))
            raise RuntimeError('savepoint rolled back')
        with session.begin_nested():
            bus.emit(session=session, event=bus.SubdomainsSaved(organization_id=1))
        assert heard == []  # nothing before the commit
    assert heard == [bus.TeamChanged(organization_id=1), bus.SubdomainsSaved(organization_id=1)]


def test_a_read_transaction_delivers_nothing(database: None, heard: list[bus.Event]) -> None:
    with read_scope() as session:
        bus.emit(session=session, event=bus.TeamChanged(organization_id=1))
    assert heard == []


def test_a_failing_subscriber_neither_fails_the_commit_nor_starves_the_others(
    database: None, heard: list[bus.Event], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: bus.Event) -> None:
        raise ValueError('a bug in a subscriber')

    bus.subscribe(broken)
    try:
        ada, _, max_ = _team()
        heard.clear()
        _make_admin(ada, max_)  # returns: the change is committed
    finally:
        bus.unsubscribe(broken)
    with read_scope() as session:
        assert session.exec(select(func.count()).select_from(User).where(User.role == Role.ADMIN)).one() == 3
    assert [type(event) for event in heard] == [bus.RoleChanged]
    assert any('a subscriber failed on RoleChanged' in record.getMessage() for record in caplog.records)


def test_every_audited_action_is_an_event_with_its_row(database: None, heard: list[bus.Event]) -> None:
    ada, _, _ = _team()
    heard.clear()
    with write_scope() as session:
        row = audit.record_event(
            session=session, organization_id=ada.organization_id, actor=ada, action=AuditAction.LOGIN_SUCCEEDED
        )
    assert row.id is not None  # committed with the change
    [event] = heard
    assert isinstance(event, bus.Recorded)
    assert (event.action, event.actor_email, event.at) == (AuditAction.LOGIN_SUCCEEDED, ada.email, row.created_at)


def test_the_changes_other_processes_hear_of_are_named_on_the_wire() -> None:
    said = events.about(bus.SessionsEnded(user_id=7))
    assert said is not None and (said.kind, said.user_id, said.from_this_process) == (
        events.EventKind.SESSIONS_ENDED,
        7,
        True,
    )
    accepted = bus.InvitationAccepted(
        organization_id=3,
        actor_id=9,
        actor_email='new@example.com',
        user_id=9,
        email='new@example.com',
        role=Role.ADMIN,
    )
    assert events.about(accepted) == events.Event(
        kind=events.EventKind.TEAM_CHANGED, organization_id=3, user_id=9, origin=events.PROCESS_ID
    )
    recorded = bus.Recorded(organization_id=3, actor_id=1, actor_email='a@example.com', action=AuditAction.LOGIN_FAILED)
    assert events.about(recorded) is None  # no open page shows a sign-in
    with pytest.raises(ValueError, match='audited'):
        events.publish(session=None, kind=events.EventKind.ROLE_CHANGED, organization_id=3)  # type: ignore[arg-type]
