"""Single sign-on, attacked: callbacks with a replayed or foreign `state`, ID tokens for another client, with another
nonce, expired or signed with a key the issuer does not publish (altered by the real provider after signing, see
tests/oidc_provider/provider.mjs), an unverified email, a stranger, a removed member. Each is refused with nothing
created: no account, no link to the provider, no session, no accepted invitation."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from nicegui.testing import User
from sqlmodel import Session, func, select

from models import (
    AuditAction,
    AuditEvent,
    BrowserSession,
    Invitation,
    Organization,
    Role,
    SingleSignOnLink,
    UserStatus,
)
from models import User as Account
from models.base import utcnow
from services import crypto
from tests.factories import make_organization, make_user, random_email
from tests.oidc_provider import OidcProvider
from tests.oidc_provider.app_flow import at_provider, come_back, configure_app, refusal_on_login, round_trip, start
from tests.ui.helpers import from_database, in_database
from ui.session import COOKIE


@pytest.fixture
def single_sign_on(oidc_provider: OidcProvider, monkeypatch: pytest.MonkeyPatch) -> OidcProvider:
    """The app (started by the `user` fixture, which must come after this one) configured for the test provider."""
    configure_app(oidc_provider, monkeypatch, CXT_OIDC_ALLOWED_DOMAINS='allowed.example')
    return oidc_provider


@dataclass(frozen=True)
class Counts:
    accounts: int
    links: int
    sessions: int
    accepted_invitations: int


def _counts(session: Session) -> Counts:
    def count(model: type, *where: object) -> int:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()  # type: ignore[arg-type]

    return Counts(
        accounts=count(Account),
        links=count(SingleSignOnLink),
        sessions=count(BrowserSession),
        accepted_invitations=count(Invitation, Invitation.accepted_at.is_not(None)),  # type: ignore[union-attr]
    )


async def counts() -> Counts:
    return await from_database(_counts)


async def member(role: Role = Role.MEMBER, *, email: str | None = None) -> str:
    def make(session: Session) -> str:
        organization = session.exec(select(Organization)).first() or make_organization(session, name='Acme Support')
        return make_user(session, organization=organization, role=role, email=email).email

    return await in_database(make)


async def signed_in_as(visitor: User, email: str) -> None:
    await visitor.open('/')
    await visitor.should_see(f'Signed in as {email}')


async def test_a_member_signs_in_and_is_linked(single_sign_on: OidcProvider, user: User) -> None:
    """The control for every refusal below: the same round trip with nothing altered signs the member in."""
    email = await member()
    location = await round_trip(user, single_sign_on, email)
    assert location.startswith('/session/start?code=')
    await user.http_client.get(location)
    assert COOKIE in user.http_client.cookies
    await signed_in_as(user, email)
    assert (await counts()).links == 1


async def test_a_replayed_callback_is_refused(single_sign_on: OidcProvider, user: User) -> None:
    email = await member()
    callback = await at_provider(single_sign_on, await start(user), email)
    assert (await come_back(user, callback)).startswith('/session/start?code=')
    before = await counts()
    again = await come_back(user, callback)
    assert 'did not work' in refusal_on_login(again)
    assert await counts() == before
    refused = await from_database(
        lambda db: db.exec(select(AuditEvent).where(AuditEvent.action == AuditAction.SSO_SIGN_IN_REFUSED)).all()
    )
    assert [event.target for event in refused] == ['unknown, used or foreign state']


async def test_a_callback_started_in_another_browser_is_refused(
    single_sign_on: OidcProvider, user: User, create_user: Callable[[], User]
) -> None:
    """Login CSRF: the attacker signs in at the provider as themselves and sends the victim their callback link."""
    attacker_email = await member()
    attacker = create_user()
    await attacker.open('/login')
    callback = await at_provider(single_sign_on, await start(attacker), attacker_email)
    before = await counts()
    await user.open('/login')
    location = await come_back(user, callback)
    assert 'did not work' in refusal_on_login(location)
    assert await counts() == before
    assert COOKIE not in user.http_client.cookies
    # The attacker's own browser could still have used it: the state was bound to it, not spent by the victim.
    assert (await come_back(attacker, callback)).startswith('/session/start?code=')


@pytest.mark.parametrize(
    ('mode', 'why'),
    [
        ('aud', "'azp'"),  # one audience, not ours: Authlib wants it authorized for us, and it is not
        ('nonce', "'nonce'"),
        ('expired', 'expired'),
        ('unpublished-key', "kid: 'unpublished'"),
    ],
)
async def test_an_altered_id_token_is_refused(single_sign_on: OidcProvider, user: User, mode: str, why: str) -> None:
    email = await member()
    before = await counts()
    with single_sign_on.tampering(mode):
        location = await round_trip(user, single_sign_on, email)
    assert 'did not work' in refusal_on_login(location)
    assert await counts() == before
    reasons = await from_database(
        lambda db: db.exec(select(AuditEvent.target).where(AuditEvent.action == AuditAction.SSO_SIGN_IN_REFUSED)).all()
    )
    assert len(reasons) == 1 and 'ID token refused' in (reasons[0] or '') and why in (reasons[0] or ''), reasons


async def test_an_unverified_email_is_refused_even_with_an_invitation(single_sign_on: OidcProvider, user: User) -> None:
    email = random_email('invited')
    await member(Role.ADMIN)
    await in_database(lambda db: _invite(db, email))
    before = await counts()
    location = await round_trip(user, single_sign_on, f'{email}#unverified')
    assert f'has not verified {email}' in refusal_on_login(location)
    assert await counts() == before


async def test_a_stranger_is_told_to_ask_for_an_invitation(single_sign_on: OidcProvider, user: User) -> None:
    await member(Role.ADMIN)
    stranger = random_email('stranger')
    before = await counts()
    location = await round_trip(user, single_sign_on, stranger)
    assert refusal_on_login(location) == f'No account for {stranger}. Ask an admin to invite you.'
    assert await counts() == before
    await user.open(location)
    await user.should_see(f'No account for {stranger}. Ask an admin to invite you.')


async def test_an_allowed_domain_joins_as_a_member(single_sign_on: OidcProvider, user: User) -> None:
    """The other side of the stranger: a verified address at `CXT_OIDC_ALLOWED_DOMAINS` joins (as a member)."""
    await member(Role.ADMIN)
    newcomer = f'new-{random_email()[:8]}@allowed.example'
    location = await round_trip(user, single_sign_on, newcomer)
    await user.http_client.get(location)
    await signed_in_as(user, newcomer)
    joined = await from_database(lambda db: db.exec(select(Account).where(Account.email == newcomer)).one())
    assert joined.role == Role.MEMBER and joined.password_hash == ''


async def test_a_removed_member_no_longer_gets_in(single_sign_on: OidcProvider, user: User) -> None:
    email = await member(email=f'leaver-{random_email()[:8]}@allowed.example')  # even from an allowed domain
    first = await round_trip(user, single_sign_on, email)  # linked while a member
    assert first.startswith('/session/start?code=')
    await in_database(lambda db: _remove(db, email))
    before = await counts()
    fresh_browser_location = await round_trip(user, single_sign_on, email)
    assert refusal_on_login(fresh_browser_location) == f'No account for {email}. Ask an admin to invite you.'
    assert await counts() == before


def _invite(session: Session, email: str) -> None:
    organization = session.exec(select(Organization)).one()
    session.add(
        Invitation(
            organization_id=organization.id or 0,
            email=email,
            role=Role.MEMBER,
            token_hash=crypto.sha256_hex(random_email()),
            expires_at=utcnow() + timedelta(days=7),
        )
    )


def _remove(session: Session, email: str) -> None:
    account = session.exec(select(Account).where(Account.email == email)).one()
    account.status = UserStatus.REMOVED
    session.add(account)
    for row in session.exec(select(BrowserSession).where(BrowserSession.user_id == account.id)):
        session.delete(row)
