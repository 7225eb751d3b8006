"""Browser sessions as rows: started, listed, used, ended one by one or all at once, and pruned."""

from datetime import timedelta

import pytest
from sqlmodel import select

from models import BrowserSession, User
from models.base import stored_id, utcnow
from services.db import write_scope
from services.errors import NotFound
from services.identity import sessions
from tests.factories import make_organization, make_user


@pytest.fixture
def ada(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session), email='ada@example.com')


def signed_in_browser(user: User, agent: str = 'Firefox') -> str:
    with write_scope() as session:
        code = sessions.start(session=session, user=user, ip='192.0.2.1', user_agent=agent)
    with write_scope() as session:
        token = sessions.complete_handoff(session=session, code=code, previous_token=None)
    assert token is not None
    return token


def who(token: str) -> sessions.SignedIn | None:
    with write_scope() as session:
        return sessions.signed_in(session=session, token=token)


def test_a_new_sign_in_in_the_same_browser_ends_its_previous_session(ada: User) -> None:
    first = signed_in_browser(ada)
    with write_scope() as session:
        code = sessions.start(session=session, user=ada, ip=None, user_agent=None)
    with write_scope() as session:
        second = sessions.complete_handoff(session=session, code=code, previous_token=first)
    assert second is not None and who(second) is not None
    assert who(first) is None


def test_sessions_are_listed_newest_use_first_and_one_can_be_ended(ada: User) -> None:
    firefox, chrome = signed_in_browser(ada, 'Firefox'), signed_in_browser(ada, 'Chrome')
    current = who(chrome)
    assert current is not None
    with write_scope() as session:
        listed = sessions.list_for(session=session, user=ada, current_session_id=current.session_id)
    assert [(info.user_agent, info.current) for info in listed] == [('Chrome', True), ('Firefox', False)]
    with write_scope() as session:
        assert sessions.end_one(session=session, user=ada, session_id=listed[1].id)
        assert not sessions.end_one(session=session, user=ada, session_id=listed[1].id), 'already ended'
    assert who(firefox) is None and who(chrome) is not None


def test_nobody_ends_another_persons_session(ada: User) -> None:
    ada_token = signed_in_browser(ada)
    with write_scope() as session:
        other = make_user(session, organization=make_organization(session))
    signed = who(ada_token)
    assert signed is not None
    with write_scope() as session:
        assert not sessions.end_one(session=session, user=other, session_id=signed.session_id)
    assert who(ada_token) is not None


def test_sign_out_everywhere_can_keep_this_browser(ada: User) -> None:
    tokens = [signed_in_browser(ada) for _ in range(3)]
    keep = who(tokens[0])
    assert keep is not None
    with write_scope() as session:
        assert sessions.end_all(session=session, user_id=stored_id(ada), keep_session_id=keep.session_id) == 2
    assert [who(token) is not None for token in tokens] == [True, False, False]
    with write_scope() as session:
        sessions.end(session=session, token=tokens[0])
    assert who(tokens[0]) is None


def test_use_is_recorded_at_most_once_a_minute(ada: User) -> None:
    token = signed_in_browser(ada)
    signed = who(token)
    assert signed is not None and not signed.stale
    with write_scope() as session:
        row = session.exec(select(BrowserSession)).one()
        row.last_seen_at -= timedelta(minutes=2)
        session.add(row)
    stale = who(token)
    assert stale is not None and stale.stale
    with write_scope() as session:
        sessions.touch(session=session, session_id=stale.session_id)
    fresh = who(token)
    assert fresh is not None and not fresh.stale


def test_a_password_entry_is_recorded_in_the_session(ada: User) -> None:
    signed = who(signed_in_browser(ada))
    assert signed is not None
    with write_scope() as session:
        entered = sessions.password_entered(session=session, session_id=signed.session_id)
    assert utcnow() - entered < timedelta(seconds=5)
    with pytest.raises(NotFound), write_scope() as session:
        sessions.password_entered(session=session, session_id=signed.session_id + 1000)


def test_ended_sessions_and_unused_handoffs_are_pruned(ada: User) -> None:
    live = signed_in_browser(ada)
    idle = signed_in_browser(ada)
    with write_scope() as session:
        sessions.start(session=session, user=ada, ip=None, user_agent=None)  # a handoff nobody used
        for row in session.exec(select(BrowserSession)):
            if row.token_hash is None:
                row.created_at -= timedelta(minutes=5)
            elif row.token_hash == sessions.crypto.sha256_hex(idle):
                row.last_seen_at -= timedelta(hours=13)
            session.add(row)
    with write_scope() as session:
        assert sessions.prune(session=session) == 2
        assert len(session.exec(select(BrowserSession)).all()) == 1
    assert who(live) is not None


def test_garbage_tokens_and_codes_match_nothing(ada: User) -> None:
    signed_in_browser(ada)
    assert who('') is None and who('x' * 200) is None and who('not-a-token') is None
    with write_scope() as session:
        assert sessions.complete_handoff(session=session, code='', previous_token=None) is None
        assert sessions.complete_handoff(session=session, code='y' * 200, previous_token=None) is None
        assert sessions.complete_handoff(session=session, code='unknown', previous_token=None) is None


def test_a_removed_persons_session_is_over(ada: User) -> None:
    token = signed_in_browser(ada)
    with write_scope() as session:
        stored = session.get_one(User, ada.id)
        stored.status = stored.status.REMOVED
        session.add(stored)
    assert who(token) is None
