"""Invitations: issue, resend, revoke, copy, expiry, rate limit, acceptance (once), email binding, org scoping."""

import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import col, select

from models import AuditEvent, Invitation, LinkState, Organization, Role, User
from models.base import stored_id, utcnow
from services.db import write_scope
from services.errors import NotFound, PermissionDenied, ValidationFailed
from services.identity import auth, invitations
from services.team import members
from tests import smtp_server as smtp
from tests.factories import acting, make_organization, make_user, random_email
from tests.smtp_server import SmtpServer

mail_env, smtp_server = smtp.mail_env, smtp.smtp_server  # fixtures

PASSWORD = 'a long new password'


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        return make_user(session, organization=organization, role=Role.ADMIN, name='Ada Admin')


def invite(actor: User, email: str = '', role: str = 'member') -> invitations.IssuedInvitation:
    with write_scope() as session:
        return invitations.invite_member(session=session, actor=actor, email=email or random_email('new'), role=role)


def token_of(issued: invitations.IssuedInvitation) -> str:
    return urlsplit(issued.link).path.rsplit('/', 1)[1]


def accept(token: str, name: str = 'Grace Hopper', password: str = PASSWORD) -> User:
    with write_scope() as session:
        return invitations.accept_invitation(
            session=session, token=token, name=name, password_hash=auth.new_password_hash(password)
        )


def view(token: str) -> invitations.InvitationView:
    with write_scope() as session:
        return invitations.lookup_invitation(session=session, token=token)


def pending(actor: User) -> list[invitations.PendingInvitation]:
    with write_scope() as session:
        return invitations.page_pending(session=session, actor=actor, limit=None).invitations


def stored(invitation_id: int) -> Invitation:
    with write_scope() as session:
        return session.get_one(Invitation, invitation_id)


def test_invite_stores_a_hashed_token_and_a_link(admin: User) -> None:
    issued = invite(admin, 'Grace@Example.com', 'admin')
    token = token_of(issued)
    assert issued.link == f'http://127.0.0.1:8080/invite/{token}'
    assert len(token) == 43  # 32 bytes, URL-safe base64 without padding
    invitation = stored(issued.invitation_id)
    assert invitation.email == 'grace@example.com'
    assert invitation.role == 'admin'
    assert invitation.token_hash != token and len(invitation.token_hash) == 64
    assert invitation.expires_at - invitation.sent_at == timedelta(days=7)
    assert invitation.delivery_status == 'not_emailed'  # no mail server configured
    (row,) = pending(admin)
    assert (row.email, row.role.label, row.invited_by, row.delivery_status.label) == (
        'grace@example.com',
        'Admin',
        'Ada Admin',
        'Not emailed',
    )
    assert view(token) == invitations.InvitationView(
        state=LinkState.VALID,
        email='grace@example.com',
        role=Role.ADMIN,
        organization_name='Acme Support',
        inviter=f'Ada Admin ({admin.email})',
    )


def test_invalid_email_and_existing_member_are_refused(admin: User) -> None:
    with pytest.raises(ValidationFailed, match='Enter a valid email address'):
        invite(admin, 'not-an-address')
    with pytest.raises(ValidationFailed, match=f'{admin.email} is already a member of your team'):
        invite(admin, admin.email.upper())
    assert pending(admin) == []


def test_inviting_a_pending_address_again_resends_it(admin: User) -> None:
    first = invite(admin, 'grace@example.com')
    second = invite(admin, 'grace@example.com', 'admin')
    assert second.invitation_id == first.invitation_id and second.resent
    assert view(token_of(first)).state == 'unknown'
    assert view(token_of(second)).role == 'admin'
    assert len(pending(admin)) == 1


def test_resend_renews_expiry_and_kills_the_old_link(admin: User) -> None:
    issued = invite(admin)
    with write_scope() as session:
        invitation = session.get_one(Invitation, issued.invitation_id)
        invitation.sent_at -= timedelta(days=6)
        invitation.expires_at -= timedelta(days=6)
        session.add(invitation)
    with write_scope() as session:
        renewed = invitations.resend_invitation(session=session, actor=admin, invitation_id=issued.invitation_id)
    assert renewed.expires_at > utcnow() + timedelta(days=6, hours=23)
    assert view(token_of(issued)).state == 'unknown'
    assert view(token_of(renewed)).state == 'valid'
    with pytest.raises(ValidationFailed, match='This invitation link is not valid'):
        accept(token_of(issued))


def test_copy_link_returns_the_emailed_link(admin: User) -> None:
    issued = invite(admin)
    with write_scope() as session:
        assert (
            invitations.invitation_link(session=session, actor=admin, invitation_id=issued.invitation_id) == issued.link
        )


def test_revoked_invitations_leave_the_list_expired_ones_stay_marked_and_neither_can_be_used(admin: User) -> None:
    revoked = invite(admin)
    expired = invite(admin)
    with write_scope() as session:
        invitations.revoke_invitation(session=session, actor=admin, invitation_id=revoked.invitation_id)
        invitation = session.get_one(Invitation, expired.invitation_id)
        invitation.expires_at = utcnow() - timedelta(seconds=1)
        session.add(invitation)
    assert [(row.id, row.expired) for row in pending(admin)] == [(expired.invitation_id, True)]
    assert view(token_of(revoked)).message == 'This invitation has been revoked'
    assert view(token_of(expired)).message == 'This invitation has expired'
    assert view('no-such-token').message == 'This invitation link is not valid'
    for token, message in ((token_of(revoked), 'revoked'), (token_of(expired), 'expired')):
        with pytest.raises(ValidationFailed, match=message):
            accept(token)
    with write_scope() as session:
        assert session.exec(select(User).where(User.name == 'Grace Hopper')).first() is None


def test_accept_creates_the_member_with_the_invited_email(admin: User) -> None:
    issued = invite(admin, 'grace@example.com', 'member')
    user = accept(token_of(issued), name='  Grace   Hopper ')
    assert (user.email, user.name, user.role, user.organization_id) == (
        'grace@example.com',
        'Grace Hopper',
        'member',
        admin.organization_id,
    )
    assert auth.check_password(PASSWORD, user.password_hash)
    assert view(token_of(issued)).message == 'This invitation has already been used'
    assert pending(admin) == []
    with pytest.raises(ValidationFailed, match='already been used'):
        accept(token_of(issued), name='Someone Else')
    with write_scope() as session:
        actions = session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id))).all()
    assert actions[-1] == 'invitation.accepted' and 'invitation.sent' in actions


def test_accept_validates_name_and_password_before_using_the_token(admin: User) -> None:
    issued = invite(admin)
    with pytest.raises(ValidationFailed, match='Use at least 10 characters'):
        accept(token_of(issued), password='short')
    with pytest.raises(ValidationFailed, match='Enter your name'):
        accept(token_of(issued), name='  ')
    assert view(token_of(issued)).state == 'valid'


def test_two_accepts_at_once_create_one_user(admin: User) -> None:
    token = token_of(invite(admin, 'race@example.com'))
    results: list[object] = []
    barrier = threading.Barrier(2)

    def attempt(name: str) -> None:
        barrier.wait()
        try:
            results.append(accept(token, name=name))
        except ValidationFailed as error:
            results.append(error)

    threads = [threading.Thread(target=attempt, args=(name,)) for name in ('Tab One', 'Tab Two')]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    users = [result for result in results if isinstance(result, User)]
    errors = [str(result) for result in results if isinstance(result, ValidationFailed)]
    assert len(users) == 1 and errors == ['This invitation has already been used']
    with write_scope() as session:
        assert len(session.exec(select(User).where(User.email == 'race@example.com')).all()) == 1


def test_members_cannot_invite_and_other_organizations_are_out_of_reach(admin: User) -> None:
    issued = invite(admin)
    with write_scope() as session:
        member = make_user(session, organization=session.get_one(Organization, admin.organization_id), role=Role.MEMBER)
        outsider = make_user(session, organization=make_organization(session), role=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        invite(member)
    with pytest.raises(PermissionDenied), write_scope() as session:
        invitations.page_pending(session=session, actor=member)
    for action in (invitations.resend_invitation, invitations.revoke_invitation, invitations.invitation_link):
        with pytest.raises(NotFound), write_scope() as session:
            action(session=session, actor=outsider, invitation_id=issued.invitation_id)
    assert pending(outsider) == []
    assert [row.id for row in pending(admin)] == [issued.invitation_id]


def test_fifty_invitations_a_day_per_organization(admin: User) -> None:
    with write_scope() as session:
        for _ in range(invitations.DAILY_LIMIT):
            invitations.invite_member(session=session, actor=admin, email=random_email('bulk'), role='member')
    with pytest.raises(ValidationFailed, match='sent 50 invitations in the last 24 hours'):
        invite(admin)
    with write_scope() as session:
        for event in session.exec(select(AuditEvent).where(AuditEvent.action == 'invitation.sent')):
            event.created_at -= timedelta(hours=25)
            session.add(event)
    invite(admin)  # a day later there is room again


def test_a_removed_member_can_be_invited_back(admin: User) -> None:
    user = accept(token_of(invite(admin, 'back@example.com')))
    with write_scope() as session:
        members.remove_member(session=session, actor=acting(session, admin), member_id=stored_id(user))
    again = accept(token_of(invite(admin, 'back@example.com', 'admin')), name='Back Again')
    assert again.id == user.id
    assert (again.status, again.role, again.name) == ('active', 'admin', 'Back Again')


@pytest.fixture
def mailed_admin(mail_env: SmtpServer, database: None) -> User:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        return make_user(session, organization=organization, role=Role.ADMIN, name='Ada Admin')


def test_invitation_email_carries_the_link(mailed_admin: User, mail_env: SmtpServer) -> None:
    issued = invite(mailed_admin, 'grace@example.com', 'admin')
    assert stored(issued.invitation_id).delivery_status == 'sending'
    invitations.send_invitation_email(issued)
    with write_scope() as session:
        assert invitations.record_delivery(session=session, issued=issued, error=None) == 'sent'
    (received,) = mail_env.wait_for(1)
    assert received.recipients == ['grace@example.com']
    assert received.subject == 'You are invited to join Acme Support on CX Toolbox'
    assert received.links == [issued.link]
    assert issued.link.startswith('http://dashboard.test/invite/')
    assert 'Ada Admin' in received.text and 'as admin' in received.text
    assert f'href="{issued.link}"' in received.html
    assert pending(mailed_admin)[0].delivery_status.label == 'Sent'


def test_a_failed_send_keeps_the_invitation(mailed_admin: User) -> None:
    issued = invite(mailed_admin)
    with write_scope() as session:
        invitations.record_delivery(session=session, issued=issued, error='Connection refused by the mail server')
    (row,) = pending(mailed_admin)
    assert (row.delivery_status.label, row.last_error) == ('Email failed', 'Connection refused by the mail server')
    # An outcome that arrives after a newer resend does not overwrite the newer one.
    with write_scope() as session:
        invitations.resend_invitation(session=session, actor=mailed_admin, invitation_id=issued.invitation_id)
        invitations.record_delivery(session=session, issued=issued, error=None)
    assert pending(mailed_admin)[0].delivery_status.label == 'Sending…'


def test_an_expired_invitation_stays_listed_for_30_days_and_resend_renews_it(admin: User) -> None:
    issued = invite(admin)
    with write_scope() as session:
        invitation = session.get_one(Invitation, issued.invitation_id)
        invitation.expires_at = utcnow() - timedelta(days=29)
        session.add(invitation)
    assert [row.expired for row in pending(admin)] == [True]
    with write_scope() as session:
        renewed = invitations.resend_invitation(session=session, actor=admin, invitation_id=issued.invitation_id)
    assert renewed.expires_at > utcnow() + timedelta(days=6, hours=23)
    assert view(token_of(renewed)).message == ''  # the new link works
    assert [row.expired for row in pending(admin)] == [False]

    with write_scope() as session:
        invitation = session.get_one(Invitation, issued.invitation_id)
        invitation.expires_at = utcnow() - timedelta(days=31)
        session.add(invitation)
    assert pending(admin) == []  # after 30 days it leaves the list, and cannot be resent any more
    with pytest.raises(ValidationFailed, match='This invitation has expired'), write_scope() as session:
        invitations.resend_invitation(session=session, actor=admin, invitation_id=issued.invitation_id)


def test_inviting_an_address_again_renews_its_expired_invitation_instead_of_listing_it_twice(admin: User) -> None:
    issued = invite(admin, 'again@example.com')
    with write_scope() as session:
        invitation = session.get_one(Invitation, issued.invitation_id)
        invitation.expires_at = utcnow() - timedelta(days=2)
        session.add(invitation)
    again = invite(admin, 'again@example.com')
    assert again.invitation_id == issued.invitation_id and again.resent
    assert [(row.email, row.expired) for row in pending(admin)] == [('again@example.com', False)]
