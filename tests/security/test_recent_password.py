"""Attacks on the recent-password rule: each sensitive service reads the actor's own browser session in its own
transaction, so an old password entry is refused whatever the caller holds, and only `sessions.password_entered` (the
`Confirm your password` dialog) opens the next 10 minutes. Another person's fresh session, an ended one, or none at
all (the command line) never counts."""

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import Session

from models import BrowserSession, Role, User
from models.base import stored_id, utcnow
from services.acting import Actor
from services.db import write_scope
from services.errors import ServiceError
from services.identity import passkeys, sessions, single_sign_on, two_factor
from services.keys import api_keys
from services.team import alerts, members
from tests.factories import make_organization, make_user


class Team:
    def __init__(self) -> None:
        with write_scope() as session:
            organization = make_organization(session)
            self.ada = make_user(session, organization=organization, role=Role.ADMIN, name='Ada Admin')
            self.max = make_user(session, organization=organization, role=Role.MEMBER, name='Max Member')
            api_keys.generate_key(session=session, actor=self.ada)


@pytest.fixture
def team(database: None) -> Team:
    return Team()


def signed_in(user: User) -> Actor:
    """`user` signed in from a browser (a real session: started, its handoff traded for the cookie's token)."""
    with write_scope() as session:
        code = sessions.start(session=session, user=user, ip='192.0.2.7', user_agent='Firefox')
    with write_scope() as session:
        token = sessions.complete_handoff(session=session, code=code, previous_token=None)
    with write_scope() as session:
        signed = sessions.signed_in(session=session, token=token)
    assert signed is not None
    return Actor(user=signed.user, ip='192.0.2.7', session_id=signed.session_id)


def password_entered_minutes_ago(actor: Actor, minutes: float) -> None:
    with write_scope() as session:
        row = session.get_one(BrowserSession, actor.session_id)
        row.password_confirmed_at = utcnow() - timedelta(minutes=minutes)
        session.add(row)


def outcome(action: Callable[[Session, Actor], object], actor: Actor) -> str:
    """What the action did: `done`, or the name of the refusal."""
    try:
        with write_scope() as session:
            action(session, actor)
    except ServiceError as error:
        return type(error).__name__
    return 'done'


def _revoke_old_key(session: Session, me: Actor) -> object:
    api_keys.rotate_key(session=session, actor=me, grace=timedelta(hours=1))
    [old] = api_keys.get_overview(session=session, actor=me.user).in_grace
    return api_keys.revoke_old_key(session=session, actor=me, key_id=old.id or 0)


# Every service that asks for a recent password, as the pages call it (Ada acts; Max is the member she acts on).
SENSITIVE: dict[str, Callable[[Session, Actor, User], object]] = {
    'reveal the API key': lambda session, me, _: api_keys.reveal_key(session=session, actor=me),
    'rotate the API key': lambda session, me, _: api_keys.rotate_key(session=session, actor=me, grace=timedelta(0)),
    'revoke an old key': lambda session, me, _: _revoke_old_key(session, me),
    'change a role': lambda session, me, max_: members.change_role(
        session=session, actor=me, member_id=stored_id(max_), role=Role.ADMIN
    ),
    'remove a member': lambda session, me, max_: members.remove_member(
        session=session, actor=me, member_id=stored_id(max_)
    ),
    'turn alerts off': lambda session, me, _: alerts.set_alerts_enabled(session=session, actor=me, enabled=False),
    'set up an authenticator app': lambda session, me, _: two_factor.begin_enrolment(session=session, actor=me),
    'turn two-factor off': lambda session, me, _: two_factor.turn_off(session=session, actor=me),
    'stop requiring two-factor': lambda session, me, _: two_factor.set_requirement(
        session=session, actor=me, required=False
    ),
    'stop requiring single sign-on': lambda session, me, _: single_sign_on.set_requirement(
        session=session, actor=me, required=False
    ),
}


@pytest.mark.parametrize('action', list(SENSITIVE))
def test_an_old_password_entry_is_refused_until_the_password_is_entered_again(team: Team, action: str) -> None:
    ada = signed_in(team.ada)
    password_entered_minutes_ago(ada, 11)

    def attempt(session: Session, me: Actor) -> object:
        return SENSITIVE[action](session, me, team.max)

    assert outcome(attempt, ada) == 'ReauthenticationRequired'
    with write_scope() as session:
        sessions.password_entered(session=session, session_id=ada.session_id or 0)
    assert outcome(attempt, ada) == 'done'


def test_the_password_entry_of_a_sign_in_without_its_second_factor_does_not_count(team: Team) -> None:
    """The session row says when; a page that was signed in with the password alone has nothing to claim."""
    ada = signed_in(team.ada)
    password_entered_minutes_ago(ada, 9)
    assert outcome(lambda session, me: api_keys.reveal_key(session=session, actor=me), ada) == 'done'
    with write_scope() as session:
        row = session.get_one(BrowserSession, ada.session_id)
        row.password_confirmed_at = None
        session.add(row)
    assert outcome(lambda session, me: api_keys.reveal_key(session=session, actor=me), ada) == (
        'ReauthenticationRequired'
    )


def test_the_other_sensitive_services_read_the_session_too(team: Team) -> None:
    """Removing a passkey, new recovery codes and resetting a member's second factor: refused with an old entry."""
    ada = signed_in(team.ada)
    password_entered_minutes_ago(ada, 30)
    refused = {
        'remove a passkey': lambda session, me: passkeys.remove_passkey(session=session, actor=me, passkey_id=1),
        'new recovery codes': lambda session, me: two_factor.new_recovery_codes(session=session, actor=me),
        'reset a second factor': lambda session, me: two_factor.reset_second_factor(
            session=session, actor=me, user_id=stored_id(team.max), code='123456'
        ),
    }
    assert {name: outcome(action, ada) for name, action in refused.items()} == dict.fromkeys(
        refused, 'ReauthenticationRequired'
    )


def test_another_persons_fresh_session_does_not_count(team: Team) -> None:
    max_ = signed_in(team.max)  # Max just signed in: his password entry is fresh
    ada = signed_in(team.ada)
    password_entered_minutes_ago(ada, 11)
    borrowed = replace(ada, session_id=max_.session_id)
    assert outcome(lambda session, me: api_keys.reveal_key(session=session, actor=me), borrowed) == (
        'ReauthenticationRequired'
    )
    with write_scope() as session:
        sessions.password_entered(session=session, session_id=ada.session_id or 0)
    assert outcome(lambda session, me: api_keys.reveal_key(session=session, actor=me), ada) == 'done'


@pytest.mark.parametrize('ending', ['signed out', 'expired', 'idle too long'])
def test_an_ended_session_does_not_count(team: Team, ending: str) -> None:
    ada = signed_in(team.ada)  # a fresh password entry
    with write_scope() as session:
        row = session.get_one(BrowserSession, ada.session_id)
        if ending == 'signed out':
            session.delete(row)
        elif ending == 'expired':
            row.expires_at = utcnow() - timedelta(seconds=1)
        else:
            row.last_seen_at = utcnow() - timedelta(hours=13)
    assert outcome(lambda session, me: api_keys.reveal_key(session=session, actor=me), ada) == (
        'ReauthenticationRequired'
    )


def test_no_session_at_all_does_not_count(team: Team) -> None:
    """The command line acts without a session: what operators may do asks for no password, the rest is refused."""
    operator = Actor(user=team.ada, ip=None, session_id=None)
    assert outcome(lambda session, me: api_keys.reveal_key(session=session, actor=me), operator) == (
        'ReauthenticationRequired'
    )
