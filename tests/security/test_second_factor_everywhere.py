"""Every factor counts everywhere (issue 18, High and Medium): a passkey guards the password path like an
authenticator app does, `Require two-factor authentication for everyone` offers set-up only to accounts with no
factor at all, a password alone is never a recent password entry for an account with a second factor, removal and
re-invitation leave no old credential behind, and the 6-digit code cannot be worn down."""

from urllib.parse import urlsplit

import pytest
from nicegui.testing import User
from pyotp.totp import TOTP
from sqlmodel import Session, select

from models import (
    AuditAction,
    AuditEvent,
    AuthenticatorApp,
    BrowserSession,
    LinkState,
    Organization,
    Passkey,
    PasswordResetToken,
    PendingSignIn,
    RecoveryCode,
    Role,
    UserStatus,
)
from models import User as Account
from models.base import stored_id, utcnow
from services import config
from services.acting import Actor
from services.db import read_scope, write_scope
from services.errors import PermissionDenied, ReauthenticationRequired
from services.identity import auth, code_lock, invitations, passkeys, password_reset, sessions, two_factor
from services.keys import api_keys
from services.team import alerts, members
from tests import smtp_server as smtp
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in
from tests.passkey_authenticator import SoftAuthenticator
from tests.smtp_server import SmtpServer
from tests.ui.helpers import ADMIN_EMAIL, button, from_database, in_database, set_up_organization
from tests.ui.helpers import sign_in as sign_in_with_the_form

smtp_server = smtp.smtp_server  # fixture
mail_env = smtp.mail_env  # fixture

LOCAL_URL = 'http://localhost:8080'  # passkeys need a domain name: the UI tests' app believes it is here
PUBLIC_URL = 'https://dash.example.com'
SET_UP_PATH = '/login/set-up-two-factor'  # ui/pages/two_factor.py's (a test must not import a page module)


@pytest.fixture
def localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('CXT_PUBLIC_URL', LOCAL_URL)


@pytest.fixture
def relying_party(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('CXT_PUBLIC_URL', PUBLIC_URL)
    config.configure(config.load_settings())


def account(session: Session, email: str = ADMIN_EMAIL) -> Account:
    return session.exec(select(Account).where(Account.email == email)).one()


def add_passkey(session: Session, authenticator: SoftAuthenticator, email: str = ADMIN_EMAIL) -> None:
    owner = account(session, email)
    slot = passkeys.ChallengeSlot()
    options = passkeys.registration_options(session=session, actor=owner, challenge=slot.issue())
    credential = authenticator.create(options)
    passkeys.add_passkey(session=session, actor=owner, name='Laptop', credential=credential, challenge=slot.take())


def enrol(session: Session, email: str = ADMIN_EMAIL) -> str:
    owner = account(session, email)
    secret = two_factor.begin_enrolment(session=session, actor=acting(session, owner)).secret
    assert two_factor.confirm_enrolment(session=session, user=owner, code=TOTP(secret).now()) is not None
    return secret


def require_two_factor(session: Session) -> None:
    for organization in session.exec(select(Organization)):
        organization.require_two_factor = True
        session.add(organization)


def pending_token(email: str, ip: str = '192.0.2.1') -> str:
    """What the sign-in page does after the right password: a pending sign-in, and the cookie's token."""
    signed = sign_in(email, DEFAULT_PASSWORD, ip=ip)
    with write_scope() as session:
        assert not two_factor.password_is_enough(session=session, user=signed)
        handoff = two_factor.begin_pending(session=session, user=signed, ip=ip, user_agent='Test')
    with write_scope() as session:
        token = two_factor.complete_pending_handoff(session=session, code=handoff)
    assert token is not None
    return token


def passkey_sign_in(authenticator: SoftAuthenticator) -> passkeys.PasskeySignIn:
    slot = passkeys.ChallengeSlot()
    credential = authenticator.get(passkeys.sign_in_options(challenge=slot.issue()))
    with write_scope() as session:
        return passkeys.sign_in(session=session, credential=credential, challenge=slot.take(), ip='192.0.2.1')


# --- High: a passkey guards the password path, and set-up is only for accounts with no factor ----------------------


async def test_a_passkey_alone_guards_the_password_path(localhost: None, user: User) -> None:
    await set_up_organization(user)
    await in_database(lambda session: add_passkey(session, SoftAuthenticator(origin=LOCAL_URL)))
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')

    await sign_in_with_the_form(user, ADMIN_EMAIL)  # the right password, from an attacker who knows it
    await user.should_see('Use a passkey')
    await user.should_not_see('Authentication code')  # no authenticator app: nothing to type a code from
    assert await from_database(lambda session: session.exec(select(BrowserSession)).all()) == []
    for path in ('/', '/security'):
        await user.open(path)
        await user.should_see('Forgot password?')


async def test_require_two_factor_offers_no_set_up_to_an_admin_with_a_passkey(localhost: None, user: User) -> None:
    """The attack: the organization requires two-factor, the admin's only factor is a passkey. With the password
    alone the attacker must not reach the set-up step (where they would add their own app and get a session in which
    `Reveal API Key` asks nothing)."""
    await set_up_organization(user)
    await in_database(lambda session: add_passkey(session, SoftAuthenticator(origin=LOCAL_URL)))
    await in_database(require_two_factor)
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')

    await sign_in_with_the_form(user, ADMIN_EMAIL)
    await user.should_see('Use a passkey')
    await user.should_not_see('Set up two-factor authentication')
    await user.open(SET_UP_PATH)  # typed straight into the address bar
    await user.should_see('Use a passkey')
    await user.should_not_see('Set up two-factor authentication')

    token = two_factor.token_from_cookie(user.http_client.cookies.get('cxt_pending_sign_in'))
    with pytest.raises(PermissionDenied):
        await in_database(lambda session: two_factor.pending_set_up_user(session=session, token=token))
    assert await from_database(lambda session: session.exec(select(AuthenticatorApp)).all()) == []
    assert await from_database(lambda session: session.exec(select(BrowserSession)).all()) == []


def test_set_up_after_the_password_is_only_for_accounts_with_no_factor(relying_party: None) -> None:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        organization.require_two_factor = True
        make_user(session, organization=organization, email='ada@example.com')
        make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER)
        make_user(session, organization=organization, email='eve@example.com', role=Role.MEMBER)
    with write_scope() as session:
        add_passkey(session, SoftAuthenticator(origin=PUBLIC_URL), 'ada@example.com')
        enrol(session, 'max@example.com')
    for email, needs_set_up in (('ada@example.com', False), ('max@example.com', False), ('eve@example.com', True)):
        token = pending_token(email)
        with read_scope() as session:
            step = two_factor.pending_step(session=session, token=token)
            assert step is not None and step.needs_set_up == needs_set_up, email
            if needs_set_up:
                assert two_factor.pending_set_up_user(session=session, token=token).email == email
            else:
                with pytest.raises(PermissionDenied):
                    two_factor.pending_set_up_user(session=session, token=token)


def test_a_password_only_sign_in_is_no_recent_password_entry_with_a_second_factor(database: None) -> None:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        ada = make_user(session, organization=organization, email='ada@example.com')
    with write_scope() as session:
        api_keys.generate_key(session=session, actor=ada)
        enrol(session, 'ada@example.com')

    def reveal_in(handoff: str) -> str:
        with write_scope() as session:
            token = sessions.complete_handoff(session=session, code=handoff, previous_token=None)
        with write_scope() as session:
            signed = sessions.signed_in(session=session, token=token)
            assert signed is not None
            return api_keys.reveal_key(
                session=session, actor=Actor(user=signed.user, ip=None, session_id=signed.session_id)
            )

    with write_scope() as session:
        password_only = sessions.start(session=session, user=ada, ip=None, user_agent=None)
    with pytest.raises(ReauthenticationRequired):
        reveal_in(password_only)
    with write_scope() as session:
        with_a_code = sessions.start(session=session, user=ada, ip=None, user_agent=None, second_factor=True)
    assert reveal_in(with_a_code).startswith('cxt_')


def test_the_second_step_takes_only_a_passkey_of_the_account_that_typed_the_password(relying_party: None) -> None:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        make_user(session, organization=organization, email='ada@example.com')
        make_user(session, organization=organization, email='eve@example.com', role=Role.MEMBER)
    adas, eves = SoftAuthenticator(origin=PUBLIC_URL), SoftAuthenticator(origin=PUBLIC_URL)
    with write_scope() as session:
        add_passkey(session, adas, 'ada@example.com')
        add_passkey(session, eves, 'eve@example.com')
    token = pending_token('ada@example.com')

    def second_step(authenticator: SoftAuthenticator) -> passkeys.PasskeySignIn:
        slot = passkeys.ChallengeSlot()
        with read_scope() as session:
            options = two_factor.second_step_passkey_options(session=session, token=token, challenge=slot.issue())
        with read_scope() as session:
            adas_id = session.exec(select(Passkey.credential_id).where(Passkey.user_id == account(session).id)).one()
        assert [allowed['id'] for allowed in options['allowCredentials']] == [adas_id]  # only Ada's are asked for
        credential = authenticator.get(options)
        with write_scope() as session:
            return two_factor.check_sign_in_passkey(
                session=session, token=token, credential=credential, challenge=slot.take(), ip='192.0.2.1'
            )

    assert second_step(eves).user is None  # Eve's own passkey does not finish Ada's sign-in
    accepted = second_step(adas).user
    assert accepted is not None and accepted.email == 'ada@example.com'
    with read_scope() as session:
        assert session.exec(select(PendingSignIn)).all() == []  # the pending sign-in ended


# --- Medium: removal and re-invitation leave nothing behind -------------------------------------------------------


def test_removing_a_member_deletes_every_credential_and_session(relying_party: None) -> None:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        admin = make_user(session, organization=organization, email='ada@example.com')
        make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER)
    authenticator = SoftAuthenticator(origin=PUBLIC_URL)
    with write_scope() as session:
        add_passkey(session, authenticator, 'max@example.com')
        enrol(session, 'max@example.com')
        maxs = account(session, 'max@example.com')
        sessions.start(session=session, user=maxs, ip=None, user_agent=None)
        assert password_reset.request_reset(session=session, email='max@example.com') is not None
        max_id = stored_id(maxs)
    pending_token('max@example.com')

    with write_scope() as session:
        members.remove_member(session=session, actor=acting(session, admin), member_id=max_id)
    with read_scope() as session:
        for model in (Passkey, AuthenticatorApp, RecoveryCode, BrowserSession, PendingSignIn, PasswordResetToken):
            assert session.exec(select(model).where(model.user_id == max_id)).all() == [], model.__name__
    assert passkey_sign_in(authenticator).user is None


def test_an_accepted_invitation_starts_from_nothing(relying_party: None) -> None:
    """The same address invited again (the same person, or a mailbox given to someone else): the old passkey, app,
    recovery codes and reset links of the row that comes back to life do not work, even for rows removed before
    removal deleted them."""
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        admin = make_user(session, organization=organization, email='ada@example.com')
        make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER)
    authenticator = SoftAuthenticator(origin=PUBLIC_URL)
    with write_scope() as session:
        add_passkey(session, authenticator, 'max@example.com')
        enrol(session, 'max@example.com')
        old_link = password_reset.request_reset(session=session, email='max@example.com')
        assert old_link is not None
        maxs = account(session, 'max@example.com')
        maxs.status = UserStatus.REMOVED  # removed by an earlier version, which kept every factor
        session.add(maxs)

    with write_scope() as session:
        issued = invitations.invite_member(session=session, actor=admin, email='max@example.com', role='member')
    with write_scope() as session:
        back = invitations.accept_invitation(
            session=session,
            token=urlsplit(issued.link).path.rsplit('/', 1)[1],
            name='Max Again',
            password_hash=auth.new_password_hash('a brand new password'),
        )
    assert passkey_sign_in(authenticator).user is None
    with read_scope() as session:
        assert not two_factor.has_second_factor(session=session, user_id=back.id)
        assert session.exec(select(RecoveryCode).where(RecoveryCode.user_id == back.id)).all() == []
        old_token = urlsplit(old_link.link).path.rsplit('/', 1)[1]
        assert password_reset.token_state(session=session, token=old_token) != LinkState.VALID


# --- Medium: the 6-digit code cannot be worn down ----------------------------------------------------------------


def test_wrong_codes_lock_the_code_step_until_a_reset_and_mail_the_owner(mail_env: SmtpServer, database: None) -> None:
    """The best attack knows the password and tries codes from as many addresses as it likes, as fast as the
    throttles allow (5 wrong codes per account and address, 50 per account, each per 15 minutes).

    Each guess is one 6-digit code; with the previous, current and next 30-second step accepted and each code accepted
    once, at most 3 of the 10^6 codes are right at any moment: p <= 3e-6 per guess (a recovery code guess is far
    worse: 10 codes out of 31^10 ~ 8.2e14).

    Wrong codes count per account over a window of 30 days from the first one, and a right code does not reset the
    count. At LOCK_AFTER = 20 the codes are locked until the password is reset (which changes the password the
    attacker knows) or an admin resets the second factor. Any 30 days overlap at most two windows, so the attacker
    gets at most 19 + 20 = 39 guesses in 30 days (before: ~4,800 a day, ~35% in 30 days):

        P(success in 30 days) <= 39 * 3 / 10^6 = 1.17e-4 = 0.0117% < 0.1%

    The owner is mailed at the 5th wrong code (the first burst) and again when the codes lock.
    """
    assert (code_lock.LOCK_AFTER, code_lock.MAIL_AFTER) == (20, 5)  # the arithmetic above
    assert 2 * code_lock.LOCK_AFTER - 1 <= 39 and 39 * 3 / 10**6 < 0.001
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        make_user(session, organization=organization, email='ada@example.com')
    with write_scope() as session:
        secret = enrol(session, 'ada@example.com')
    alerts.wait_until_sent()
    before = len(mail_env.messages)  # the admins' alert about the new authenticator app

    def enter(token: str, code: str, ip: str) -> two_factor.CodeOutcome:
        with write_scope() as session:
            return two_factor.check_sign_in_code(session=session, token=token, code=code, ip=ip)

    right = TOTP(secret)
    guesses = 0
    for address in range(code_lock.LOCK_AFTER // 5):  # 5 per address: the pair throttle never stops them
        ip = f'198.51.100.{address + 1}'
        token = pending_token('ada@example.com', ip=ip)
        for _ in range(5):
            code = next(guess for guess in ('000000', '000001', '000002', '000003') if guess not in valid_now(secret))
            assert enter(token, code, ip).user is None
            guesses += 1
        if guesses == code_lock.MAIL_AFTER:
            code_lock.wait_until_sent()
            (burst,) = mail_env.wait_for(before + 1)[before:]
            assert burst.recipients == ['ada@example.com']
            assert 'wrong two-factor codes' in burst.text and '198.51.100.1' in burst.text
            assert 'http://dashboard.test/forgot-password' in burst.text

    # Locked: even the right code, with the right password, from a fresh address, no longer signs in.
    token = pending_token('ada@example.com', ip='203.0.113.50')
    refused = enter(token, right.now(), '203.0.113.50')
    assert refused.user is None and refused.message == code_lock.LOCKED
    with read_scope() as session:
        step = two_factor.pending_step(session=session, token=token)
        assert step is not None and step.codes_locked
    code_lock.wait_until_sent()
    locked_mail = mail_env.wait_for(before + 2)[before + 1]
    assert locked_mail.recipients == ['ada@example.com'] and 'locked' in locked_mail.subject

    # The owner resets the password from the mailbox: codes work again, with the new password.
    with write_scope() as session:
        issued = password_reset.request_reset(session=session, email='ada@example.com')
    assert issued is not None
    with write_scope() as session:
        password_reset.reset_password(
            session=session,
            token=urlsplit(issued.link).path.rsplit('/', 1)[1],
            password_hash=auth.new_password_hash(DEFAULT_PASSWORD),
        )
    token = pending_token('ada@example.com', ip='203.0.113.50')
    assert enter(token, right.at(utcnow().timestamp() + 30), '203.0.113.50').user is not None
    with read_scope() as session:
        failed = session.exec(select(AuditEvent).where(AuditEvent.action == AuditAction.TWO_FACTOR_FAILED)).all()
        assert len(failed) == code_lock.LOCK_AFTER  # the refused right code was not even checked


def valid_now(secret: str) -> set[str]:
    """The codes the server may accept in the next few seconds (a wrong guess must be wrong)."""
    totp, now = TOTP(secret), utcnow().timestamp()
    return {totp.at(now + 30 * offset) for offset in (-2, -1, 0, 1, 2)}
