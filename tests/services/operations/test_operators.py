"""The operator commands' rules, in process (tests/security/test_cli.py runs them as the real program)."""

import pytest
from sqlmodel import select

from models import AuditAction, AuditEvent, Role, User
from services import audit
from services.db import write_scope
from services.errors import NotFound, ValidationFailed
from services.operations import operators
from tests.factories import make_organization, make_user


def test_create_admin_needs_an_organization(database: None) -> None:
    with pytest.raises(NotFound, match='open /setup'), write_scope() as session:
        operators.create_admin(session=session, email='ada@example.com', name='Ada')


def test_create_admin_in_a_named_organization(database: None) -> None:
    with write_scope() as session:
        make_organization(session, name='First')
        second = make_organization(session, name='Second')
        other = make_organization(session, name='Third')
        make_user(session, organization=other, email='taken@example.com')
    with write_scope() as session:
        link = operators.create_admin(session=session, email='nia@example.com', name='Nia', organization_id=second.id)
        assert '/reset-password/' in link
        nia = session.exec(select(User).where(User.email == 'nia@example.com')).one()
        assert (nia.organization_id, nia.role) == (second.id, Role.ADMIN)
    with pytest.raises(NotFound, match='no organization 999'), write_scope() as session:
        operators.create_admin(session=session, email='x@example.com', name='X', organization_id=999)
    with pytest.raises(ValidationFailed, match='another organization'), write_scope() as session:
        operators.create_admin(session=session, email='taken@example.com', name='T', organization_id=second.id)


def test_unlock_and_reset_link_are_audited_as_the_command_line(database: None) -> None:
    with write_scope() as session:
        make_user(session, organization=make_organization(session), email='ada@example.com')
    with write_scope() as session:
        assert operators.unlock(session=session, email='ADA@example.com') == 0
        assert '/reset-password/' in operators.reset_link(session=session, email='ada@example.com')
    with write_scope() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.actor_email == audit.OPERATOR)).all()
    assert {event.action for event in events} == {AuditAction.LOGIN_UNLOCKED, AuditAction.PASSWORD_RESET_REQUESTED}
    with pytest.raises(NotFound), write_scope() as session:
        operators.reset_link(session=session, email='nobody@example.com')
