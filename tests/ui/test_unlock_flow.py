"""An admin lets a locked-out member sign in again from the team list."""

import asyncio

from nicegui.testing import User
from sqlmodel import Session, select

from models import Role
from models import User as Account
from services.errors import InvalidCredentials
from services.identity import auth
from tests.factories import sign_in
from tests.ui.helpers import ADMIN_EMAIL, PASSWORD, in_database, set_up_organization

MEMBER_EMAIL = 'max@example.com'


def _add_member(session: Session) -> int:
    admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
    organization_id = admin.organization_id
    member = Account(
        organization_id=organization_id,
        email=MEMBER_EMAIL,
        name='Max Member',
        role=Role.MEMBER,
        password_hash=auth.hash_password(PASSWORD),
    )
    session.add(member)
    session.flush()
    assert member.id is not None
    return member.id


def _lock_out() -> None:
    for _ in range(5):
        try:
            sign_in(MEMBER_EMAIL, 'wrong password!', ip='192.0.2.1')
        except InvalidCredentials:
            pass


async def test_a_locked_member_is_marked_and_unlocked(user: User) -> None:
    await set_up_organization(user)
    member_id = await in_database(_add_member)
    await asyncio.to_thread(_lock_out)
    await user.open('/')
    user.find('User Management').click()
    await user.should_see(marker=f'unlock-{member_id}')
    user.find(marker=f'unlock-{member_id}').click()
    await user.should_see(f'{MEMBER_EMAIL} can sign in again')
    await user.should_not_see(marker=f'unlock-{member_id}')
    signed = await asyncio.to_thread(sign_in, MEMBER_EMAIL, PASSWORD, '192.0.2.1')
    assert signed.email == MEMBER_EMAIL
