"""The team: listing, role changes, removal, the last-admin guard and organization scoping."""

import pytest
from sqlmodel import select

from models import AuditEvent, BrowserSession, Organization, Role, User, UserStatus
from models.base import stored_id
from services.db import write_scope
from services.errors import InvalidCredentials, NotFound, PermissionDenied, ReauthenticationRequired, ValidationFailed
from services.identity import sessions
from services.team import members
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        return {
            'admin': make_user(session, organization=organization, role=Role.ADMIN, name='Ada Admin'),
            'member': make_user(session, organization=organization, role=Role.MEMBER, name='Grace Member'),
            'outsider': make_user(session, organization=make_organization(session), role=Role.ADMIN),
        }


def change_role(actor: User, member: User, role: str) -> User:
    with write_scope() as session:
        return members.change_role(
            session=session, actor=acting(session, actor), member_id=stored_id(member), role=role
        )


def remove(actor: User, member: User, password_minutes_ago: float | None = 0) -> User:
    with write_scope() as session:
        return members.remove_member(
            session=session,
            actor=acting(session, actor, password_minutes_ago=password_minutes_ago),
            member_id=stored_id(member),
        )


def load(user: User) -> User:
    with write_scope() as session:
        return session.get_one(User, user.id)


def listed(actor: User) -> list[str]:
    with write_scope() as session:
        return [user.email for user in members.page_members(session=session, actor=actor).members]


def test_list_shows_only_the_actors_active_team(team: dict[str, User]) -> None:
    assert listed(team['member']) == [team['admin'].email, team['member'].email]
    assert listed(team['outsider']) == [team['outsider'].email]


def test_admin_promotes_and_demotes(team: dict[str, User]) -> None:
    assert change_role(team['admin'], team['member'], 'admin').role == 'admin'
    assert change_role(team['admin'], team['member'], 'member').role == 'member'
    with write_scope() as session:
        targets = session.exec(select(AuditEvent.target).where(AuditEvent.action == 'member.role_changed')).all()
    email = team['member'].email
    assert targets == [f'{email}: member → admin', f'{email}: admin → member']


def test_the_last_admin_can_be_neither_demoted_nor_removed(team: dict[str, User]) -> None:
    admin, member = team['admin'], team['member']
    with pytest.raises(ValidationFailed, match='The last admin cannot be removed or demoted'):
        change_role(admin, admin, 'member')
    assert load(admin).role == 'admin'
    # With a second admin the first may step down; then the second is the last one.
    change_role(admin, member, 'admin')
    change_role(load(member), admin, 'member')
    with pytest.raises(ValidationFailed, match='last admin'):
        change_role(load(member), member, 'member')
    with write_scope() as session:
        # An admin who was removed does not count.
        ghost = make_user(session, organization=session.get_one(Organization, admin.organization_id))
        ghost.status = UserStatus.REMOVED
        session.add(ghost)
    with pytest.raises(ValidationFailed, match='last admin'):
        change_role(load(member), member, 'member')
    assert (load(admin).role, load(member).role) == ('member', 'admin')


def test_an_admin_can_remove_another_admin_but_not_themselves(team: dict[str, User]) -> None:
    change_role(team['admin'], team['member'], 'admin')
    remove(load(team['member']), team['admin'])
    assert load(team['admin']).status == 'removed'
    with pytest.raises(PermissionDenied, match='cannot remove yourself'):
        remove(load(team['member']), team['member'])
    assert load(team['member']).status == 'active'


def test_removal_ends_every_session_and_blocks_sign_in(team: dict[str, User]) -> None:
    member = team['member']
    with write_scope() as session:
        handoffs = [sessions.start(session=session, user=member, ip=None, user_agent=None) for _ in range(2)]
    with write_scope() as session:
        tokens = [sessions.complete_handoff(session=session, code=code, previous_token=None) for code in handoffs]
    removed = remove(team['admin'], member)
    assert removed.status == 'removed'
    assert listed(team['admin']) == [team['admin'].email]
    with write_scope() as session:
        assert all(sessions.signed_in(session=session, token=token) is None for token in tokens)
        assert session.exec(select(BrowserSession).where(BrowserSession.user_id == member.id)).all() == []
        event = session.exec(select(AuditEvent).where(AuditEvent.action == 'member.removed')).one()
        assert (event.actor_email, event.target) == (team['admin'].email, member.email)
    with pytest.raises(InvalidCredentials):
        sign_in(member.email, DEFAULT_PASSWORD)


def test_removal_needs_a_recent_password(team: dict[str, User]) -> None:
    with pytest.raises(ReauthenticationRequired):
        remove(team['admin'], team['member'], password_minutes_ago=11)
    with pytest.raises(ReauthenticationRequired):
        remove(team['admin'], team['member'], password_minutes_ago=None)
    assert load(team['member']).status == 'active'


def test_members_cannot_change_roles_or_remove(team: dict[str, User]) -> None:
    with pytest.raises(PermissionDenied):
        change_role(team['member'], team['admin'], 'member')
    with pytest.raises(PermissionDenied):
        remove(team['member'], team['admin'])
    with pytest.raises(PermissionDenied):
        change_role(team['member'], team['member'], 'admin')
    assert (load(team['admin']).role, load(team['member']).role) == ('admin', 'member')


def test_other_organizations_are_out_of_reach(team: dict[str, User]) -> None:
    with pytest.raises(NotFound):
        change_role(team['outsider'], team['member'], 'admin')
    with pytest.raises(NotFound):
        remove(team['outsider'], team['member'])
    assert load(team['member']).status == 'active'
    assert load(team['member']).role == 'member'


def test_a_removed_member_cannot_be_removed_or_changed_again(team: dict[str, User]) -> None:
    remove(team['admin'], team['member'])
    with pytest.raises(NotFound):
        remove(team['admin'], team['member'])
    with pytest.raises(NotFound):
        change_role(team['admin'], team['member'], 'admin')


def test_unknown_role_is_refused(team: dict[str, User]) -> None:
    with pytest.raises(ValidationFailed, match='Choose Admin or Member'):
        change_role(team['admin'], team['member'], 'owner')
