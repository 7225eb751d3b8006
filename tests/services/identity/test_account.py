"""The signed-in person's own sign-in as use cases, without NiceGUI: confirm or change the password, keep the session
alive, sign out here or everywhere."""

from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditAction, AuditEvent, BrowserSession, User
from models.base import utcnow
from services.acting import SCOPES, Actor
from services.db import read_scope, write_scope
from services.errors import InvalidCredentials, ValidationFailed
from services.identity import account, sessions
from services.keys import api_keys
from tests.factories import DEFAULT_PASSWORD, make_organization, make_user, sign_in

NEW_PASSWORD = 'a brand new passphrase'


@pytest.fixture
def ada(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session), email='ada@example.com')


def browser(user: User) -> tuple[Actor, str]:
    """`user` signed in from a browser: the actor its pages build, and the cookie's token."""
    with write_scope() as session:
        code = sessions.start(session=session, user=user, ip='192.0.2.1', user_agent='Firefox')
    with write_scope() as session:
        token = sessions.complete_handoff(session=session, code=code, previous_token=None)
    assert token is not None
    with read_scope() as session:
        signed = sessions.signed_in(session=session, token=token)
    assert signed is not None
    return Actor(user=signed.user, ip='192.0.2.1', session_id=signed.session_id), token


def row_of(actor: Actor) -> BrowserSession | None:
    with read_scope() as session:
        return session.get(BrowserSession, actor.session_id)


def audited(action: AuditAction) -> list[AuditEvent]:
    with read_scope() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def age_password_entry(actor: Actor, minutes: float) -> None:
    with write_scope() as session:
        row = session.get_one(BrowserSession, actor.session_id)
        row.password_confirmed_at = utcnow() - timedelta(minutes=minutes)
        session.add(row)


def test_confirming_the_password_opens_sensitive_actions_for_this_session(ada: User) -> None:
    me, _ = browser(ada)
    with write_scope() as session:
        api_keys.generate_key(session=session, actor=ada)
    age_password_entry(me, 11)
    confirmed_at = account.confirm_password(scopes=SCOPES, actor=me, password=DEFAULT_PASSWORD)
    row = row_of(me)
    assert row is not None and row.password_confirmed_at == confirmed_at
    assert SCOPES.writing(lambda session: api_keys.reveal_key(session=session, actor=me)).startswith('cxt_')


def test_a_wrong_password_is_told_at_its_field_audited_and_opens_nothing(ada: User) -> None:
    me, _ = browser(ada)
    age_password_entry(me, 11)
    before = row_of(me)
    with pytest.raises(ValidationFailed) as raised:
        account.confirm_password(scopes=SCOPES, actor=me, password='not my password')
    assert raised.value.errors == {'password': account.WRONG_PASSWORD}
    after = row_of(me)
    assert before is not None and after is not None
    assert after.password_confirmed_at == before.password_confirmed_at
    assert [(event.actor_email, event.ip) for event in audited(AuditAction.PASSWORD_CONFIRM_FAILED)] == [
        ('ada@example.com', '192.0.2.1')
    ]


def test_changing_the_password_keeps_this_session_and_ends_the_others(ada: User) -> None:
    me, token = browser(ada)
    _, other_token = browser(ada)
    assert account.change_password(
        scopes=SCOPES, actor=me, current_password=DEFAULT_PASSWORD, new_password=NEW_PASSWORD
    )
    with read_scope() as session:
        assert sessions.signed_in(session=session, token=token) is not None
        assert sessions.signed_in(session=session, token=other_token) is None
    assert sign_in('ada@example.com', NEW_PASSWORD).id == ada.id
    with pytest.raises(InvalidCredentials):
        sign_in('ada@example.com', DEFAULT_PASSWORD)
    assert len(audited(AuditAction.PASSWORD_CHANGED)) == 1


def test_a_password_change_is_refused_with_a_short_new_or_a_wrong_current_password(ada: User) -> None:
    me, _ = browser(ada)
    with pytest.raises(ValidationFailed) as short:
        account.change_password(scopes=SCOPES, actor=me, current_password=DEFAULT_PASSWORD, new_password='short')
    assert list(short.value.errors) == ['password']
    with pytest.raises(ValidationFailed) as wrong:
        account.change_password(scopes=SCOPES, actor=me, current_password='not it', new_password=NEW_PASSWORD)
    assert wrong.value.errors == {'current_password': account.WRONG_PASSWORD}
    assert sign_in('ada@example.com', DEFAULT_PASSWORD).id == ada.id  # unchanged


def test_keep_alive_moves_last_seen_forward(ada: User) -> None:
    me, _ = browser(ada)
    with write_scope() as session:
        row = session.get_one(BrowserSession, me.session_id)
        row.last_seen_at = utcnow() - timedelta(hours=1)
        session.add(row)
    account.keep_alive(scopes=SCOPES, session_id=me.session_id or 0)
    row = row_of(me)
    assert row is not None and utcnow() - row.last_seen_at < timedelta(minutes=1)


def test_signing_out_ends_only_this_browser(ada: User) -> None:
    _, token = browser(ada)
    _, other_token = browser(ada)
    account.sign_out(scopes=SCOPES, token=token)
    with read_scope() as session:
        assert sessions.signed_in(session=session, token=token) is None
        assert sessions.signed_in(session=session, token=other_token) is not None


def test_signing_out_everywhere_ends_every_session_and_is_audited(ada: User) -> None:
    me, token = browser(ada)
    _, other_token = browser(ada)
    assert SCOPES.writing(lambda session: account.sign_out_everywhere(session=session, actor=me)) == 2
    with read_scope() as session:
        assert sessions.signed_in(session=session, token=token) is None
        assert sessions.signed_in(session=session, token=other_token) is None
    [event] = audited(AuditAction.SIGNED_OUT_EVERYWHERE)
    assert (event.actor_email, event.target, event.ip) == ('ada@example.com', '2 sessions', '192.0.2.1')
