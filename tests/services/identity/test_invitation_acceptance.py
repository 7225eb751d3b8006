"""Accepting an invitation as a use case: the new account and where its browser goes; on both engines."""

from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from models import Organization, User
from services.acting import SCOPES
from services.errors import ValidationFailed
from services.identity import invitations, sessions, sign_in, two_factor
from services.identity.next_step import NextStep
from tests.factories import make_organization, make_user

PASSWORD = 'a long enough password'


@pytest.fixture
def admin(database: None) -> User:
    with SCOPES.write() as session:
        return make_user(session, organization=make_organization(session, name='Acme'), email='ada@example.com')


def invite(admin: User, email: str = 'grace@example.com') -> str:
    with SCOPES.write() as session:
        issued = invitations.invite_member(session=session, actor=admin, email=email, role='member')
    return urlsplit(issued.link).path.rsplit('/', 1)[1]


def accept(token: str, name: str = 'Grace Hopper', password: str = PASSWORD) -> invitations.Joined:
    return invitations.accept_with_password(
        scopes=SCOPES, token=token, name=name, password=password, ip='192.0.2.1', user_agent='Test'
    )


def emails() -> list[str]:
    return SCOPES.reading(lambda session: sorted(user.email for user in session.exec(select(User))))


def test_accepting_creates_the_account_signed_in(admin: User) -> None:
    joined = accept(invite(admin))
    assert joined.organization_id == admin.organization_id
    token = sign_in.start_session(scopes=SCOPES, code=joined.next_step.handoff, previous_token=None)
    signed = SCOPES.reading(lambda session: sessions.signed_in(session=session, token=token))
    assert signed is not None and (signed.user.email, signed.user.name) == ('grace@example.com', 'Grace Hopper')


def test_a_bad_name_or_password_is_refused_before_anything_is_created(admin: User) -> None:
    token = invite(admin)
    with pytest.raises(ValidationFailed) as no_name:
        accept(token, name='  ')
    assert list(no_name.value.errors) == ['name']
    with pytest.raises(ValidationFailed) as short:
        accept(token, password='short')
    assert list(short.value.errors) == ['password']
    assert emails() == ['ada@example.com']
    accept(token)  # the link still works
    with pytest.raises(ValidationFailed, match='already been used'):
        accept(token)


def test_an_organization_that_requires_a_second_factor_sends_the_new_account_to_set_one_up(admin: User) -> None:
    with SCOPES.write() as session:
        organization = session.get(Organization, admin.organization_id)
        assert organization is not None
        organization.require_two_factor = True
        session.add(organization)
    joined = accept(invite(admin))
    assert joined.next_step.step == NextStep.SECOND_STEP
    token = sign_in.start_second_step(scopes=SCOPES, code=joined.next_step.handoff)
    step = SCOPES.reading(lambda session: two_factor.pending_step(session=session, token=token))
    assert step is not None and step.email == 'grace@example.com' and step.needs_set_up
