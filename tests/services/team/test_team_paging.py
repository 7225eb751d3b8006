"""The team's tables read one page at a time: paged, sorted, searched, scoped to the organization and checked; and an
admin's one-time password reset link for a teammate."""

from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditEvent, Invitation, PasswordResetToken, Role, User, UserStatus
from models.audit import AuditAction
from models.base import stored_id, utcnow
from services import crypto
from services.db import write_scope
from services.errors import NotFound, PermissionDenied, ValidationFailed
from services.identity import invitations, password_reset
from services.team import members
from tests.factories import make_organization, make_user

TEAM = 60  # members besides the admin: more than two pages of 25


@pytest.fixture
def crowd(database: None) -> dict[str, User]:
    """Acme Support: an admin, a member, 58 more (no bcrypt for them) and 30 pending invitations; and an outsider."""
    with write_scope() as session:
        acme = make_organization(session, name='Acme Support')
        admin = make_user(session, organization=acme, role=Role.ADMIN, name='Ada Admin', email='ada@example.com')
        member = make_user(session, organization=acme, role=Role.MEMBER, name='Grace Hopper', email='grace@example.com')
        for number in range(TEAM - 1):
            session.add(
                User(
                    organization_id=stored_id(acme),
                    email=f'person{number:03d}@example.com',
                    name=f'Person {number:03d}',
                    password_hash='not a real hash',
                    role=Role.MEMBER,
                    status=UserStatus.REMOVED if number == 0 else UserStatus.ACTIVE,
                )
            )
        now = utcnow()
        for number in range(30):
            session.add(
                Invitation(
                    organization_id=stored_id(acme),
                    email=f'invitee{number:03d}@example.com',
                    role=Role.MEMBER,
                    invited_by_id=admin.id,
                    token_hash=f'{number:064d}',
                    sent_at=now - timedelta(minutes=number),
                    created_at=now,
                    expires_at=now + timedelta(days=7) if number != 29 else now - timedelta(days=31),
                )
            )
        outsider = make_user(session, organization=make_organization(session), role=Role.ADMIN, name='Otto Outsider')
        return {'admin': admin, 'member': member, 'outsider': outsider}


def page(actor: User, **query: object) -> members.MemberPage:
    with write_scope() as session:
        return members.page_members(session=session, actor=actor, **query)  # type: ignore[arg-type]


def pending(actor: User, **query: object) -> invitations.InvitationPage:
    with write_scope() as session:
        return invitations.page_pending(session=session, actor=actor, **query)  # type: ignore[arg-type]


def test_members_come_25_a_page_with_the_total(crowd: dict[str, User]) -> None:
    first, third = page(crowd['member']), page(crowd['member'], offset=50)
    active = TEAM + 1 - 1  # the admin, the member and 58 others (one of the 59 was removed)
    assert first.total == third.total == active
    assert len(first.members) == 25 and len(third.members) == active - 50
    assert [user.email for user in first.members[:2]] == ['ada@example.com', 'grace@example.com']  # joined first
    everyone = [user.email for offset in (0, 25, 50) for user in page(crowd['admin'], offset=offset).members]
    assert len(everyone) == len(set(everyone)) == active, 'pages neither overlap nor skip anyone'
    assert 'person000@example.com' not in everyone, 'a removed member is not on the team'
    assert len(page(crowd['admin'], limit=2).members) == 2
    assert len(page(crowd['admin'], limit=10_000).members) == active  # at most MAX_PAGE_SIZE (100)


def test_members_sort_and_search(crowd: dict[str, User]) -> None:
    by_name = page(crowd['admin'], sort_by='name', descending=True)
    assert by_name.members[0].name == 'Person 058' and by_name.total == TEAM
    assert page(crowd['admin'], sort_by='email').members[0].email == 'ada@example.com'
    assert page(crowd['admin'], sort_by='role').members[0].role == Role.ADMIN
    assert page(crowd['admin'], sort_by='nonsense').members[0].email == 'ada@example.com'  # back to joined
    found = page(crowd['admin'], search='  HOPPER ')
    assert [user.email for user in found.members] == ['grace@example.com'] and found.total == 1
    assert page(crowd['admin'], search='person01').total == 10  # by email or name, any case
    assert page(crowd['admin'], search='%').total == 0, 'LIKE wildcards are taken literally'
    assert page(crowd['admin'], search='Otto').total == 0, 'never another organization'
    assert [user.email for user in page(crowd['outsider']).members] == [crowd['outsider'].email]


def test_a_removed_person_reads_no_team(crowd: dict[str, User]) -> None:
    with write_scope() as session:
        stored = session.get_one(User, crowd['member'].id)
        stored.status = UserStatus.REMOVED
        session.add(stored)
    with pytest.raises(PermissionDenied):
        page(crowd['member'])


def test_pending_invitations_page_sort_search_and_permission(crowd: dict[str, User]) -> None:
    first = pending(crowd['admin'])
    assert first.total == 29, 'one expired over 30 days ago is no longer listed'
    assert len(first.invitations) == 25 and first.invitations[0].email == 'invitee000@example.com'  # newest first
    assert len(pending(crowd['admin'], offset=25).invitations) == 4
    assert pending(crowd['admin'], sort_by='email', descending=True).invitations[0].email == 'invitee028@example.com'
    assert pending(crowd['admin'], search='INVITEE02').total == 9
    assert pending(crowd['admin'], search='ada admin').total == 29, 'the inviter counts too'
    assert first.invitations[0].invited_by == 'Ada Admin'
    assert pending(crowd['outsider']).total == 0
    with pytest.raises(PermissionDenied):
        pending(crowd['member'])
    with write_scope() as session:
        unpaged = invitations.page_pending(session=session, actor=crowd['admin'], limit=None)
    assert len(unpaged.invitations) == 29


def reset_link(actor: User, member: User) -> password_reset.IssuedReset:
    with write_scope() as session:
        return password_reset.admin_reset_link(
            session=session, actor=actor, member_id=stored_id(member), ip='192.0.2.9'
        )


def test_an_admin_makes_a_one_time_reset_link_for_a_teammate(crowd: dict[str, User]) -> None:
    issued = reset_link(crowd['admin'], crowd['member'])
    assert issued.email == 'grace@example.com' and issued.name == 'Grace Hopper'
    token = issued.link.rsplit('/reset-password/', 1)[1]
    with write_scope() as session:
        (stored,) = session.exec(select(PasswordResetToken)).all()
        assert stored.token_hash == crypto.sha256_hex(token) and stored.user_id == crowd['member'].id
        assert stored.expires_at - utcnow() <= password_reset.LIFETIME
        (event,) = session.exec(
            select(AuditEvent).where(AuditEvent.action == AuditAction.PASSWORD_RESET_LINK_CREATED)
        ).all()
        assert (event.actor_id, event.target, event.ip) == (crowd['admin'].id, 'grace@example.com', '192.0.2.9')
        assert AuditAction.PASSWORD_RESET_LINK_CREATED.label == 'Made a password reset link'
        user = password_reset.reset_password(session=session, token=token, password_hash='new hash')
        assert user.id == crowd['member'].id
    with write_scope() as session, pytest.raises(ValidationFailed, match='already been used'):
        password_reset.reset_password(session=session, token=token, password_hash='again')


def test_only_an_admin_of_the_same_organization_makes_reset_links(crowd: dict[str, User]) -> None:
    with pytest.raises(PermissionDenied):
        reset_link(crowd['member'], crowd['admin'])
    with pytest.raises(NotFound):
        reset_link(crowd['outsider'], crowd['member'])
    with pytest.raises(PermissionDenied, match='Security page'):
        reset_link(crowd['admin'], crowd['admin'])
    for _ in range(password_reset.HOURLY_LIMIT):
        reset_link(crowd['admin'], crowd['member'])
    with pytest.raises(ValidationFailed, match='in the last hour'):
        reset_link(crowd['admin'], crowd['member'])
