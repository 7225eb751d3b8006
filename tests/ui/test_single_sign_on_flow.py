"""Single sign-on as people use it, against the real test provider: `Sign in with …` on `/login`, an invitation
accepted with `Accept with …`, `Require single sign-on for everyone` (a member's password refused, an admin's
break-glass password sign-in let through, audited and mailed), `Confirm with …` for someone without a password, and an
issuer that does not answer (a clear line on `/login`; passwords keep working)."""

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from nicegui.testing import User
from sqlmodel import Session, col, select

from models import AuditAction, AuditEvent, BrowserSession, Invitation, Organization, Role
from models import User as Account
from models.base import utcnow
from services import config
from services.errors import ConfigError
from services.identity import invitations, password_reset
from services.team import alerts
from tests import smtp_server as smtp
from tests.factories import make_user, random_email
from tests.oidc_provider import OidcProvider, free_port, query_of
from tests.oidc_provider.app_flow import (
    at_provider,
    come_back,
    configure_app,
    refusal_on_login,
    signed_in_through,
    start,
)
from tests.smtp_server import SmtpServer
from tests.ui.helpers import (
    ADMIN_EMAIL,
    PASSWORD,
    button,
    from_database,
    in_database,
    password_entered_minutes_ago,
    set_up_organization,
    sign_in,
)

smtp_server = smtp.smtp_server  # fixture
mail_env = smtp.mail_env  # fixture

NAME = 'Acme ID'


@pytest.fixture
def single_sign_on(oidc_provider: OidcProvider, monkeypatch: pytest.MonkeyPatch) -> OidcProvider:
    configure_app(oidc_provider, monkeypatch, CXT_OIDC_NAME=NAME)
    return oidc_provider


def _admin(session: Session) -> Account:
    return session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()


def _member(session: Session, *, role: Role = Role.MEMBER, password: bool = True) -> str:
    organization = session.exec(select(Organization)).one()
    made = make_user(session, organization=organization, role=role)
    if not password:
        made.password_hash = ''
        session.add(made)
    return made.email


def _actions(session: Session) -> list[str]:
    return list(session.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all())  # type: ignore[arg-type]


async def test_login_offers_the_provider_only_when_configured(user: User) -> None:
    await set_up_organization(user)
    user.find('Sign out').click()
    await user.should_see('Forgot password?')
    await user.should_not_see('Sign in with')


async def test_a_member_signs_in_with_the_provider(single_sign_on: OidcProvider, user: User) -> None:
    await set_up_organization(user)
    user.find('Sign out').click()
    await user.should_see(f'Sign in with {NAME}')
    await signed_in_through(user, single_sign_on, ADMIN_EMAIL)
    await user.open('/')
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')
    assert AuditAction.SSO_LINKED in await from_database(_actions)
    assert AuditAction.SSO_SIGN_IN_SUCCEEDED in await from_database(_actions)
    session_row = await from_database(lambda db: db.exec(select(BrowserSession)).one())
    assert session_row.single_sign_on
    await user.open('/security')  # listed like any other session, and the provider owns the second factor
    await user.should_see('This browser')
    await user.should_see(f'When you sign in with {NAME}, {NAME} asks for your second factor')


async def test_an_invitation_is_accepted_with_the_provider(single_sign_on: OidcProvider, user: User) -> None:
    await set_up_organization(user)
    invited = random_email('invited')

    def invite(session: Session) -> str:
        issued = invitations.invite_member(session=session, actor=_admin(session), email=invited, role=Role.ADMIN)
        return issued.link.rsplit('/', 1)[1]

    token = await in_database(invite)
    user.find('Sign out').click()
    await user.should_see('Forgot password?')
    await user.open(f'/invite/{token}')
    await user.should_see('Accept invitation')
    await user.should_see(f'Accept with {NAME}')
    await signed_in_through(user, single_sign_on, invited, invitation=token)
    await user.open('/')
    await user.should_see(f'Signed in as {invited}')
    joined = await from_database(lambda db: db.exec(select(Account).where(Account.email == invited)).one())
    assert joined.role == Role.ADMIN and joined.password_hash == ''
    accepted = await from_database(lambda db: db.exec(select(Invitation).where(Invitation.email == invited)).one())
    assert accepted.accepted_at is not None


async def test_an_invitation_for_someone_else_is_not_accepted(single_sign_on: OidcProvider, user: User) -> None:
    await set_up_organization(user)
    invited, other = random_email('invited'), random_email('other')
    token = await in_database(
        lambda db: invitations.invite_member(session=db, actor=_admin(db), email=invited, role=Role.MEMBER).link
    )
    location = await come_back(
        user, await at_provider(single_sign_on, await start(user, invitation=token.rsplit('/', 1)[1]), other)
    )
    assert refusal_on_login(location).startswith(f'This invitation is for {invited}, but you signed in')
    nobody_new = select(Account).where(col(Account.email).in_([invited, other]))
    assert await from_database(lambda db: db.exec(nobody_new).all()) == []


async def test_requiring_single_sign_on_refuses_a_members_password_and_audits_an_admins(
    mail_env: SmtpServer, single_sign_on: OidcProvider, user: User, create_user: Callable[[], User]
) -> None:
    await set_up_organization(user)
    member_email = await in_database(_member)
    await user.open('/security')
    await user.should_see(f'When you sign in with {NAME}')
    await user.should_not_see('Require single sign-on for everyone')  # an organization rule: on /organization
    await user.open('/organization')
    await user.should_see('Redirect URI')
    await user.should_see('/login/oidc/callback')
    user.find('Require single sign-on for everyone').click()
    await user.should_see('Members now sign in with single sign-on only')
    assert AuditAction.SSO_REQUIRED in await from_database(_actions)

    member = create_user()
    await member.open('/login')
    await sign_in(member, member_email, PASSWORD)
    await member.should_see(f'Your organization signs in with {NAME} only. Use Sign in with {NAME}.')
    await member.open('/')
    await member.should_see('Forgot password?')  # not signed in
    assert AuditAction.SSO_PASSWORD_REFUSED in await from_database(_actions)

    admin = create_user()
    await admin.open('/login')
    await sign_in(admin, ADMIN_EMAIL, PASSWORD)  # the way back in while the provider is down
    await admin.should_see(f'Signed in as {ADMIN_EMAIL}')
    assert AuditAction.SSO_BREAK_GLASS in await from_database(_actions)
    await asyncio.to_thread(alerts.wait_until_sent)
    (mail,) = await asyncio.to_thread(mail_env.wait_for, 1)
    assert mail.recipients == [ADMIN_EMAIL]
    assert 'signed in with a password while single sign-on is required' in mail.subject

    # No way around it through a password reset either: no link is made (the page answers the same as ever).
    reset = await in_database(lambda db: password_reset.request_reset(session=db, email=member_email))
    assert reset is None


async def test_confirm_with_the_provider_for_someone_without_a_password(
    single_sign_on: OidcProvider, user: User
) -> None:
    await set_up_organization(user)
    email = await in_database(lambda db: _member(db, role=Role.ADMIN, password=False))
    user.find('Sign out').click()
    await user.should_see('Forgot password?')
    await signed_in_through(user, single_sign_on, email)
    await password_entered_minutes_ago(30, email)
    await user.open('/organization')
    user.find('Require single sign-on for everyone').click()
    await user.should_see(f'Confirm with {NAME}')
    await user.should_not_see(marker='sudo-password')  # no password field: there is no password to type

    authorization_url = await start(user, target='/organization', confirm=True)
    asked = query_of(authorization_url)
    assert (asked['prompt'], asked['max_age']) == ('login', '0')  # a fresh sign-in at the provider
    location = await come_back(user, await at_provider(single_sign_on, authorization_url, email))
    assert location == '/organization'
    sessions_of = await from_database(lambda db: db.exec(select(BrowserSession)).all())
    (current,) = sessions_of
    assert current.password_confirmed_at is not None
    assert utcnow() - current.password_confirmed_at < timedelta(minutes=1)
    assert AuditAction.SSO_CONFIRMED in await from_database(_actions)

    # Someone else's sign-in at the provider confirms nothing.
    await password_entered_minutes_ago(30, email)
    other = await in_database(lambda db: _member(db, password=False))
    location = await come_back(
        user, await at_provider(single_sign_on, await start(user, target='/organization', confirm=True), other)
    )
    assert 'as someone else' in refusal_on_login(location)
    stale = await from_database(lambda db: db.exec(select(BrowserSession)).one())
    assert stale.password_confirmed_at is not None and utcnow() - stale.password_confirmed_at > timedelta(minutes=20)


@pytest.fixture
def unreachable_issuer(monkeypatch: pytest.MonkeyPatch) -> str:
    nobody = f'http://127.0.0.1:{free_port()}'  # nothing listens there
    monkeypatch.setenv('CXT_OIDC_ISSUER', nobody)
    monkeypatch.setenv('CXT_OIDC_CLIENT_ID', 'x')
    monkeypatch.setenv('CXT_OIDC_CLIENT_SECRET', 'y')
    return nobody


async def test_an_issuer_that_does_not_answer_is_one_line_and_passwords_keep_working(
    unreachable_issuer: str, user: User
) -> None:
    nobody = unreachable_issuer
    await set_up_organization(user)
    user.find('Sign out').click()
    await user.should_see('Sign in with single sign-on')
    response = await user.http_client.get('/login/oidc/start?next=/')
    said = refusal_on_login(response.headers['location'])
    assert said.startswith(f'Single sign-on is not available: {nobody}/.well-known/openid-configuration did not answer')
    assert '\n' not in said
    await user.open(response.headers['location'])
    await user.should_see('Single sign-on is not available')
    await sign_in(user, ADMIN_EMAIL, PASSWORD)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')
    button(user, 'Sign out')  # the dashboard is there


@pytest.mark.parametrize(
    ('environment', 'line'),
    [
        ({'CXT_OIDC_ISSUER': 'accounts.example.com'}, 'CXT_OIDC_ISSUER: must be the https:// address'),
        ({'CXT_OIDC_ISSUER': 'https://id.example.com'}, 'CXT_OIDC_CLIENT_ID: required when CXT_OIDC_ISSUER is set'),
        (
            {'CXT_OIDC_ISSUER': 'https://id.example.com', 'CXT_OIDC_CLIENT_ID': 'x'},
            'CXT_OIDC_CLIENT_SECRET: required when CXT_OIDC_ISSUER is set',
        ),
        (
            {
                'CXT_OIDC_ISSUER': 'https://id.example.com',
                'CXT_OIDC_CLIENT_ID': 'x',
                'CXT_OIDC_CLIENT_SECRET': 'y',
                'CXT_OIDC_SCOPES': 'email',
            },
            'CXT_OIDC_SCOPES: must include openid',
        ),
    ],
)
def test_a_bad_single_sign_on_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], line: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        config.load_settings()
    assert str(refused.value).startswith(line)
    assert '\n' not in str(refused.value)


async def test_the_provider_owns_the_second_factor(single_sign_on: OidcProvider, user: User) -> None:
    """With two-factor required and none set up here, a password sign-in must set one up first; a sign-in through
    the provider is not asked for this app's own second factor."""
    await set_up_organization(user)

    def require_two_factor(session: Session) -> None:
        organization = session.exec(select(Organization)).one()
        organization.require_two_factor = True
        session.add(organization)

    await in_database(require_two_factor)
    await user.open('/')
    await user.should_see('Forgot password?')  # the password session no longer counts without a second factor
    await signed_in_through(user, single_sign_on, ADMIN_EMAIL)
    await user.open('/')
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')
