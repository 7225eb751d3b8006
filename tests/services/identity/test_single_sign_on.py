"""The single sign-on callback's use cases without a page or a provider (the identity as the provider proved it):
who gets in and their session, the refusals recorded with nothing created, and `Confirm with …`; on both engines."""

import time

import pytest
from sqlmodel import select

from models import AuditAction, AuditEvent, User
from services import config
from services.acting import SCOPES
from services.identity import sessions, sign_in, single_sign_on
from services.identity.next_step import NextStep
from services.identity.oidc import ProviderIdentity
from tests.factories import make_organization, make_user

IP = '198.51.100.4'
ISSUER = 'https://id.example.com'


@pytest.fixture
def ada(database: None, monkeypatch: pytest.MonkeyPatch) -> User:
    monkeypatch.setenv('CXT_OIDC_ISSUER', ISSUER)
    monkeypatch.setenv('CXT_OIDC_CLIENT_ID', 'dashboard')
    monkeypatch.setenv('CXT_OIDC_CLIENT_SECRET', 'secret')
    monkeypatch.setenv('CXT_OIDC_NAME', 'Acme ID')
    config.configure(config.load_settings())
    with SCOPES.write() as session:
        return make_user(session, organization=make_organization(session, name='Acme'), email='ada@example.com')


def identity(email: str | None, *, subject: str = 'sub-1', verified: bool = True) -> ProviderIdentity:
    return ProviderIdentity(
        issuer=ISSUER, subject=subject, email=email, email_verified=verified, name='Ada', auth_time=time.time()
    )


def audited(action: AuditAction) -> list[AuditEvent]:
    return SCOPES.reading(lambda session: list(session.exec(select(AuditEvent).where(AuditEvent.action == action))))


def users() -> list[str]:
    return SCOPES.reading(lambda session: sorted(user.email for user in session.exec(select(User))))


def test_a_member_proved_by_the_provider_gets_a_session(ada: User) -> None:
    outcome = single_sign_on.sign_in_with_provider(
        scopes=SCOPES, identity=identity('ada@example.com'), ip=IP, user_agent='Test'
    )
    assert not isinstance(outcome, single_sign_on.Refusal) and outcome.step == NextStep.SESSION
    token = sign_in.start_session(scopes=SCOPES, code=outcome.handoff, previous_token=None)
    signed = SCOPES.reading(lambda session: sessions.signed_in(session=session, token=token))
    assert signed is not None and signed.user.email == 'ada@example.com'
    assert len(audited(AuditAction.SSO_SIGN_IN_SUCCEEDED)) == 1


@pytest.mark.parametrize(
    ('email', 'verified', 'said'),
    [
        ('eve@example.com', True, 'No account for eve@example.com. Ask an admin to invite you.'),
        ('ada@example.com', False, 'Acme ID has not verified ada@example.com as yours'),
        (None, True, 'Acme ID did not tell us your email address.'),
    ],
)
def test_a_refusal_creates_nothing_and_is_recorded(ada: User, email: str | None, verified: bool, said: str) -> None:
    outcome = single_sign_on.sign_in_with_provider(
        scopes=SCOPES, identity=identity(email, verified=verified), ip=IP, user_agent='Test'
    )
    assert isinstance(outcome, single_sign_on.Refusal) and outcome.message.startswith(said)
    assert users() == ['ada@example.com']
    (refused,) = audited(AuditAction.SSO_SIGN_IN_REFUSED)
    assert refused.ip == IP
    assert audited(AuditAction.SSO_LINKED) == []  # rolled back with the refused sign-in


def test_confirm_renews_the_password_time_only_for_the_same_person_in_a_live_session(ada: User) -> None:
    started = time.time()
    ended = single_sign_on.confirm_with_provider(
        scopes=SCOPES, identity=identity('ada@example.com'), token='no-such-session', started_at=started, ip=IP
    )
    assert ended is not None and ended.message == single_sign_on.SESSION_ENDED
    first = single_sign_on.sign_in_with_provider(
        scopes=SCOPES, identity=identity('ada@example.com'), ip=IP, user_agent='Test'
    )
    assert not isinstance(first, single_sign_on.Refusal)
    token = sign_in.start_session(scopes=SCOPES, code=first.handoff, previous_token=None)
    other = single_sign_on.confirm_with_provider(
        scopes=SCOPES, identity=identity('ada@example.com', subject='sub-2'), token=token, started_at=started, ip=IP
    )
    assert other is not None and 'as someone else' in other.message
    assert len(audited(AuditAction.SSO_SIGN_IN_REFUSED)) == 1
    same = single_sign_on.confirm_with_provider(
        scopes=SCOPES, identity=identity('ada@example.com'), token=token, started_at=started, ip=IP
    )
    assert same is None
    assert len(audited(AuditAction.SSO_CONFIRMED)) == 1
