"""The team list's columns for admins: when each teammate last signed in, whether they have a second factor, and the
filter that narrows the list to those without one or without a sign-in for 30 days."""

from datetime import timedelta

import pytest

from models import AuditEvent, AuthenticatorApp, Role, User
from models.audit import AuditAction
from models.base import stored_id, utcnow
from services.db import read_scope, write_scope
from services.errors import PermissionDenied
from services.team import members
from tests.factories import make_organization, make_user


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        acme = make_organization(session, name='Acme Support')
        admin = make_user(session, organization=acme, role=Role.ADMIN, name='Ada Admin')
        recent = make_user(session, organization=acme, role=Role.MEMBER, name='Recent Rita')
        dormant = make_user(session, organization=acme, role=Role.MEMBER, name='Dormant Dan')
        never = make_user(session, organization=acme, role=Role.MEMBER, name='Never Nell')
        outsider = make_user(session, organization=make_organization(session), role=Role.ADMIN, name='Other Otto')
        now = utcnow()
        for who, when in ((admin, now), (recent, now - timedelta(days=2)), (dormant, now - timedelta(days=45))):
            session.add(
                AuditEvent(
                    organization_id=acme.id,
                    actor_id=who.id,
                    actor_email=who.email,
                    action=AuditAction.LOGIN_SUCCEEDED,
                    created_at=when,
                )
            )
        # Another organization's sign-in of the same person id range must never show.
        session.add(
            AuditEvent(organization_id=outsider.organization_id, actor_id=never.id, action=AuditAction.LOGIN_SUCCEEDED)
        )
        session.add(AuthenticatorApp(user_id=stored_id(recent), secret_encrypted='x', confirmed_at=now))
        session.add(AuthenticatorApp(user_id=stored_id(dormant), secret_encrypted='x', confirmed_at=None))  # unfinished
        return {'admin': admin, 'recent': recent, 'dormant': dormant, 'never': never, 'outsider': outsider}


def names(actor: User, show: members.MemberFilter) -> list[str]:
    with read_scope() as session:
        return [m.name for m in members.page_members(session=session, actor=actor, show=show, sort_by='name').members]


def test_last_sign_in_is_the_newest_sign_in_of_each_teammate_in_this_organization(team: dict[str, User]) -> None:
    ids = [stored_id(team[who]) for who in ('admin', 'recent', 'dormant', 'never')]
    with read_scope() as session:
        seen = members.last_sign_ins(session=session, actor=team['admin'], user_ids=ids)
    assert set(seen) == {team['admin'].id, team['recent'].id, team['dormant'].id}  # never signed in: missing
    assert utcnow() - seen[stored_id(team['dormant'])] > timedelta(days=44)


def test_the_filter_shows_who_lacks_a_second_factor_or_a_recent_sign_in(team: dict[str, User]) -> None:
    admin = team['admin']
    assert names(admin, members.MemberFilter.EVERYONE) == ['Ada Admin', 'Dormant Dan', 'Never Nell', 'Recent Rita']
    assert names(admin, members.MemberFilter.WITHOUT_TWO_FACTOR) == ['Ada Admin', 'Dormant Dan', 'Never Nell']
    assert names(admin, members.MemberFilter.DORMANT) == ['Dormant Dan', 'Never Nell']


def test_only_admins_see_sign_ins_or_filter_by_them(team: dict[str, User]) -> None:
    with read_scope() as session, pytest.raises(PermissionDenied):
        members.last_sign_ins(session=session, actor=team['recent'], user_ids=[stored_id(team['admin'])])
    with read_scope() as session, pytest.raises(PermissionDenied):
        members.page_members(session=session, actor=team['recent'], show=members.MemberFilter.DORMANT)
    with read_scope() as session:  # another organization's admin learns nothing about this team
        assert members.last_sign_ins(session=session, actor=team['outsider'], user_ids=[stored_id(team['admin'])]) == {}
