"""The team at its edges: a role set to what it already is, and an admin acting after being demoted meanwhile.

The UI reads the acting user in one transaction and acts in a later one (after a password prompt, possibly
minutes later), so the `actor` a service gets may be older than the database: these tests pass such an actor.
"""

import pytest
from sqlmodel import col, select

from models import AuditEvent, Role, User
from models.base import stored_id
from services.db import read_scope, write_scope
from services.errors import PermissionDenied
from services.team import members
from tests.factories import acting, make_organization, make_user


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        return {
            'ada': make_user(session, organization=organization, role=Role.ADMIN, name='Ada Admin'),
            'bob': make_user(session, organization=organization, role=Role.ADMIN, name='Bob Admin'),
            'grace': make_user(session, organization=organization, role=Role.MEMBER, name='Grace Member'),
        }


def change_role(actor: User, member: User, role: str) -> User:
    with write_scope() as session:
        return members.change_role(
            session=session, actor=acting(session, actor), member_id=stored_id(member), role=role
        )


def remove(actor: User, member: User) -> User:
    with write_scope() as session:
        return members.remove_member(session=session, actor=acting(session, actor), member_id=stored_id(member))


def load(user: User) -> User:
    with read_scope() as session:
        return session.get_one(User, user.id)


def audit_actions() -> list[str]:
    with read_scope() as session:
        return list(session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id))).all())


@pytest.mark.parametrize(('who', 'role'), [('grace', 'member'), ('bob', 'admin')])
def test_setting_the_role_someone_already_has_changes_nothing_and_logs_nothing(
    team: dict[str, User], who: str, role: str
) -> None:
    unchanged = change_role(team['ada'], team[who], role)
    assert unchanged.role == role == load(team[who]).role
    assert audit_actions() == []


def test_an_admin_demoted_meanwhile_cannot_remove_the_last_remaining_admin(team: dict[str, User]) -> None:
    bob_as_read_before = load(team['bob'])
    change_role(team['ada'], team['bob'], 'member')  # Ada demotes Bob while Bob's removal of Ada waits
    with pytest.raises(PermissionDenied):  # Bob is no admin any more: the role is read inside the transaction
        remove(bob_as_read_before, team['ada'])
    assert (load(team['ada']).status, load(team['ada']).role) == ('active', 'admin')


def test_an_admin_demoted_meanwhile_can_no_longer_remove_members(team: dict[str, User]) -> None:
    """The services read the actor's role inside their own transaction, not from the object the page loaded."""
    bob_as_read_before = load(team['bob'])
    change_role(team['ada'], team['bob'], 'member')
    with pytest.raises(PermissionDenied):
        remove(bob_as_read_before, team['grace'])
    assert load(team['grace']).status == 'active'
