"""Invitations at their edges: bad role, taken addresses, links that are no longer pending, malformed tokens."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from models import Invitation, Role, User
from models.base import utcnow
from services.db import read_scope, write_scope
from services.errors import ValidationFailed
from services.identity import auth, invitations
from tests.factories import make_organization, make_user, random_email, sign_in

PASSWORD = 'a long new password'


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme Support'), name='Ada Admin')


def invite(actor: User, email: str = '', role: str | None = 'member') -> invitations.IssuedInvitation:
    with write_scope() as session:
        return invitations.invite_member(session=session, actor=actor, email=email or random_email('new'), role=role)


def token_of(issued: invitations.IssuedInvitation) -> str:
    return urlsplit(issued.link).path.rsplit('/', 1)[1]


def accept(token: str, name: str = 'Grace Hopper') -> User:
    with write_scope() as session:
        return invitations.accept_invitation(
            session=session, token=token, name=name, password_hash=auth.new_password_hash(PASSWORD)
        )


def stored_row(invitation_id: int) -> tuple[object, ...]:
    with read_scope() as session:
        invitation = session.get_one(Invitation, invitation_id)
    return (invitation.token_hash, invitation.sent_at, invitation.expires_at, invitation.revoked_at)


def pending_emails(actor: User) -> list[str]:
    with read_scope() as session:
        return [row.email for row in invitations.page_pending(session=session, actor=actor, limit=None).invitations]


@pytest.mark.parametrize('role', [None, '', 'owner', 'ADMIN'])
def test_a_role_other_than_member_or_admin_is_refused_and_nothing_is_stored(admin: User, role: str | None) -> None:
    with pytest.raises(ValidationFailed, match='Choose Member or Admin') as raised:
        invite(admin, 'grace@example.com', role)
    assert raised.value.field == 'role'
    assert pending_emails(admin) == []


def test_an_address_with_an_account_in_another_organization_is_refused(admin: User) -> None:
    with write_scope() as session:
        elsewhere = make_user(session, organization=make_organization(session, name='Other Co'), role=Role.MEMBER)
    with pytest.raises(ValidationFailed, match='already has an account in another organization') as raised:
        invite(admin, elsewhere.email)
    assert raised.value.field == 'email'
    assert pending_emails(admin) == []


@pytest.mark.parametrize(
    ('make_stale', 'message'),
    [
        ('revoke', 'This invitation has been revoked'),
        ('expire', 'This invitation has expired'),
        ('accept', 'This invitation has already been used'),
    ],
)
def test_an_invitation_no_longer_pending_cannot_be_revoked_or_copied_nor_resent_unless_expired(
    admin: User, make_stale: str, message: str
) -> None:
    issued = invite(admin)
    if make_stale == 'revoke':
        with write_scope() as session:
            invitations.revoke_invitation(session=session, actor=admin, invitation_id=issued.invitation_id)
    elif make_stale == 'expire':
        with write_scope() as session:
            invitation = session.get_one(Invitation, issued.invitation_id)
            invitation.expires_at = utcnow() - timedelta(seconds=1)
            session.add(invitation)
    else:
        accept(token_of(issued))
    before = stored_row(issued.invitation_id)
    refused = [invitations.revoke_invitation, invitations.invitation_link]
    if make_stale != 'expire':  # an expired one can still be resent (for 30 days): tested in test_invitations.py
        refused.append(invitations.resend_invitation)
    for action in refused:
        with pytest.raises(ValidationFailed, match=message), write_scope() as session:
            action(session=session, actor=admin, invitation_id=issued.invitation_id)
    assert stored_row(issued.invitation_id) == before, 'a refused resend or revoke changes nothing'


@pytest.mark.parametrize('token', ['', 'x' * 101])
def test_an_empty_or_overlong_token_is_simply_not_valid(admin: User, token: str) -> None:
    invite(admin)
    with read_scope() as session:
        view = invitations.lookup_invitation(session=session, token=token)
    assert view == invitations.InvitationView(state=invitations.LinkState.UNKNOWN)
    assert view.message == 'This invitation link is not valid'
    with pytest.raises(ValidationFailed, match='This invitation link is not valid'):
        accept(token)


def test_accepting_after_the_address_joined_another_organization_leaves_that_account_alone(admin: User) -> None:
    issued = invite(admin, 'grace@example.com')
    # Meanwhile another organization invited the same person, who accepted there first.
    with write_scope() as session:
        other_admin = make_user(session, organization=make_organization(session, name='Other Co'))
    with write_scope() as session:
        other = invitations.invite_member(session=session, actor=other_admin, email='grace@example.com', role='member')
    first = accept(token_of(other), name='Grace at Other Co')

    with pytest.raises(ValidationFailed, match=r'grace@example\.com already has an account\. Sign in instead\.'):
        accept(token_of(issued), name='Grace at Acme')

    with read_scope() as session:
        (account,) = session.exec(select(User).where(User.email == 'grace@example.com')).all()
    assert (account.id, account.organization_id, account.name) == (first.id, other_admin.organization_id, first.name)
    assert sign_in('grace@example.com', PASSWORD).id == first.id
    # Nothing was half-done: Acme's invitation is still pending (not marked used by the refused attempt).
    assert pending_emails(admin) == ['grace@example.com']
