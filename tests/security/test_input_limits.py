"""Over-long text typed (or sent past the browser) into a form: capped at the field, refused by the service, and never
stored, so nobody can grow the database by megabytes with a few sign-in attempts."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlmodel import Session, SQLModel, select

from models import Role
from models import User as Account
from services.db import read_scope, write_scope
from services.errors import InvalidCredentials, ValidationFailed
from services.identity import auth, invitations
from tests import smtp_server as smtp
from tests.factories import make_organization, make_user, sign_in
from tests.smtp_server import SmtpServer
from tests.ui.helpers import ADMIN_EMAIL, PASSWORD, button, in_database, set_up_organization

mail_env, smtp_server = smtp.mail_env, smtp.smtp_server  # fixtures: the reset form shows only with a mail server

# 254 characters, the most an address may have: a 64-character local part and a 189-character domain.
LONGEST_EMAIL = 'a' * 64 + '@' + 'b' * 63 + '.' + 'c' * 63 + '.' + 'd' * 57 + '.com'
TOO_LONG_EMAIL = 'e' + LONGEST_EMAIL
HUGE_EMAIL = 'x' * 900_000 + '@example.com'  # the 900 KB address of the attack
TOO_LONG_NAME = 'N' * 101


def stored_size(data_dir: Path) -> int:
    """The database on disk: the main file, its write-ahead log and shared-memory index."""
    return sum(path.stat().st_size for path in data_dir.glob('cxt.sqlite3*'))


def longest_stored_text_containing(marker: str) -> int:
    """The length of the longest text value, in any column of any table, that contains `marker`."""
    longest = 0
    with read_scope() as session:
        connection = session.connection()
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                for value in row:
                    if isinstance(value, str) and marker in value:
                        longest = max(longest, len(value))
    return longest


def test_sign_in_with_a_900_kb_email_stores_none_of_it(database: None, isolated_environment: Path) -> None:
    with write_scope() as session:
        make_user(session, organization=make_organization(session))
    before = stored_size(isolated_environment)

    for _ in range(5):
        with pytest.raises(InvalidCredentials, match='Invalid email or password'):
            sign_in(HUGE_EMAIL, 'wrong password!')

    grown = stored_size(isolated_environment) - before
    assert grown < 100_000, f'the database grew by {grown:,} bytes'
    assert longest_stored_text_containing('x' * 100) <= auth.EMAIL_MAX_LENGTH


def test_an_address_of_254_characters_is_accepted_and_one_more_is_refused() -> None:
    assert auth.normalize_email(LONGEST_EMAIL) == LONGEST_EMAIL
    with pytest.raises(ValidationFailed, match=r'^Use at most 254 characters$') as refused:
        auth.normalize_email(TOO_LONG_EMAIL)
    assert refused.value.field == 'email'
    with pytest.raises(ValidationFailed, match=r'^Use at most 254 characters$'):
        auth.normalize_email(HUGE_EMAIL)


def test_names_and_organization_names_are_capped_at_100_characters() -> None:
    assert auth.validate_name('N' * 100) == 'N' * 100
    with pytest.raises(ValidationFailed, match=r'^Use at most 100 characters$') as refused:
        auth.validate_name(TOO_LONG_NAME)
    assert refused.value.field == 'name'
    with pytest.raises(ValidationFailed, match=r'^Use at most 100 characters$') as refused:
        auth.validate_first_admin(
            organization_name=TOO_LONG_NAME, name='Ada', email='ada@example.com', password='long enough pw'
        )
    assert refused.value.field == 'organization'


PATIENCE = 30  # attempts, 0.1 s apart, as in tests/ui: each action runs off the event loop


def input_named(user: User, label: str) -> ui.input:
    [field] = user.find(kind=ui.input, content=label).elements
    assert isinstance(field, ui.input)
    return field


def max_lengths(user: User, *labels: str) -> dict[str, int | None]:
    """Each labelled input's `maxlength`, as the browser gets it."""
    lengths: dict[str, int | None] = {}
    for label in labels:
        value = input_named(user, label).props.get('maxlength')
        lengths[label] = None if value is None else int(value)
    return lengths


async def test_the_setup_form_caps_each_field_and_refuses_an_over_long_name(user: User) -> None:
    await user.open('/setup')
    assert max_lengths(user, 'Organization name', 'Your name', 'Email', 'Password') == {
        'Organization name': 100,
        'Your name': 100,
        'Email': 254,
        'Password': 72,
    }
    # A client that ignores `maxlength` (or writes to the page socket itself) still meets the service's limit.
    user.find('Organization name').type(TOO_LONG_NAME)
    user.find('Your name').type('Ada Admin')
    user.find('Email').type(ADMIN_EMAIL)
    user.find('Password').type(PASSWORD)
    button(user, 'Create organization').click()
    await user.should_see('Use at most 100 characters', retries=PATIENCE)
    assert input_named(user, 'Organization name').error == 'Use at most 100 characters'
    await user.should_not_see('Signed in as')


async def test_the_invite_forms_cap_each_field_and_refuse_over_long_values(user: User) -> None:
    await set_up_organization(user)
    assert max_lengths(user, 'Kustomer Organization Sub Domain', 'Kustomer Sandbox Organization Sub Domain') == {
        'Kustomer Organization Sub Domain': 253,
        'Kustomer Sandbox Organization Sub Domain': 253,
    }
    user.find('User Management').click()
    await user.should_see(marker='invite-email')  # the tab is built when it is first opened
    assert user.find(kind=ui.input, marker='invite-email').elements.pop().props['maxlength'] == '254'
    user.find(marker='invite-email').type(TOO_LONG_EMAIL)
    user.find('Send Invite').click()
    await user.should_see('Use at most 254 characters', retries=PATIENCE)
    await user.should_not_see('Invitation sent to')

    def invite(session: Session) -> str:
        admin = session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()
        issued = invitations.invite_member(
            session=session, actor=admin, email='grace@example.com', role=Role.MEMBER.value
        )
        return issued.link

    link = await in_database(invite)
    await user.open(urlsplit(link).path)
    assert max_lengths(user, 'Your name', 'Password') == {'Your name': 100, 'Password': 72}
    user.find('Your name').type(TOO_LONG_NAME)
    user.find('Password').type('grace password 123')
    button(user, 'Accept invitation').click()
    await user.should_see('Use at most 100 characters', retries=PATIENCE)
    assert input_named(user, 'Your name').error == 'Use at most 100 characters'


async def test_the_sign_in_and_reset_forms_cap_each_field(mail_env: SmtpServer, user: User) -> None:
    await user.open('/forgot-password')
    assert max_lengths(user, 'Email') == {'Email': 254}

    def first_admin(session: Session) -> None:
        auth.create_first_admin(
            session=session,
            organization_name='Acme Support',
            name='Ada Admin',
            email=ADMIN_EMAIL,
            password_hash=auth.hash_password(PASSWORD),
        )

    await in_database(first_admin)
    await user.open('/login')
    assert max_lengths(user, 'Email', 'Password') == {'Email': 254, 'Password': 72}
