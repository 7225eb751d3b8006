"""PostgreSQL writers run side by side: each read-modify-write holds the lock that guards it (services/db.py lists
them), so the races below end with one winner, and writes of different organizations never wait for each other."""

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import col, func, select

from models import ApiKey, BrowserSession, CodeLock, Invitation, Organization, Passkey, RecoveryCode, Role, User
from services import config, key_cache
from services import db as db_module
from services.acting import Actor
from services.db import write_scope
from services.errors import NotFound, PermissionDenied, ValidationFailed
from services.identity import auth, handoff, invitations, passkeys, password_reset, sessions, two_factor
from services.keys import api_keys
from services.team import members
from tests.factories import DEFAULT_PASSWORD, make_organization, make_user, sign_in, signed_in_actor
from tests.passkey_authenticator import SoftAuthenticator
from tests.services.identity.test_password_reset import token_of
from tests.services.identity.test_two_factor import code_for, enrol, pending_token

PUBLIC_URL = 'https://dash.example.com'
WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def actor_of(user: User) -> Actor:
    """`user` acting from a browser session of their own where they typed their password just now (made once, in its
    own transaction, so a race's transactions hold only what the race is about)."""
    assert user.id is not None
    if user.id not in _actors:
        _actors[user.id] = signed_in_actor(user)
    return _actors[user.id]


_actors: dict[int, Actor] = {}


@pytest.fixture(autouse=True)
def _fresh_actors() -> Iterator[None]:
    yield
    _actors.clear()


@pytest.fixture
def pg(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # This process's key cache does not listen: no other process's confirmation to wait for after a rotation.
    monkeypatch.setattr(key_cache, 'CONFIRM_BOUND', 0.0)
    monkeypatch.setenv('CXT_PUBLIC_URL', PUBLIC_URL)
    config.configure(config.load_settings())
    yield


def admin_of(name: str) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name=name))


def at_once(*work: Callable[[], Any]) -> list[Any]:
    """Run each callable on its own thread, released together; what each returned or raised, in order."""
    barrier = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_a_write_in_another_organization_commits_while_one_organization_holds_its_lock(
    pg: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point of guarding each write by what it changes: Acme's rotation, held open, keeps nobody at Globex
    waiting. (Were every writer still taking one turn, Globex's first write would be told the database is busy.)"""
    monkeypatch.setattr(db_module, 'SQLITE_BUSY_TIMEOUT_MS', 3000)
    acme, globex = admin_of('Acme'), admin_of('Globex')
    for admin in (acme, globex):
        with write_scope() as session:
            api_keys.generate_key(session=session, actor=admin)
    with write_scope() as session:
        teammate = make_user(session, organization=session.get_one(Organization, globex.organization_id))
    committed: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def rotate_and_hold() -> None:
        with write_scope() as session:
            api_keys.rotate_key(session=session, actor=actor_of(acme), grace=timedelta(0))
            holding.set()
            release.wait(60)
        committed.append('Acme')

    holder = threading.Thread(target=rotate_and_hold)
    holder.start()
    try:
        assert holding.wait(30)
        with write_scope() as session:
            api_keys.rotate_key(session=session, actor=actor_of(globex), grace=timedelta(0))
        with write_scope() as session:
            invitations.invite_member(session=session, actor=globex, email='new@globex.example', role='member')
        with write_scope() as session:
            members.change_role(session=session, actor=actor_of(globex), member_id=teammate.id or 0, role='member')
        sign_in(globex.email, DEFAULT_PASSWORD)
        committed.append('Globex')
    finally:
        release.set()
        holder.join(60)
    assert committed == ['Globex', 'Acme']


def test_a_write_in_the_same_organization_waits_and_past_the_busy_timeout_is_told_busy(
    pg: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, 'SQLITE_BUSY_TIMEOUT_MS', 300)
    acme = admin_of('Acme')
    with write_scope() as session:
        api_keys.generate_key(session=session, actor=acme)
    holding, release = threading.Event(), threading.Event()

    def rotate_and_hold() -> None:
        with write_scope() as session:
            api_keys.rotate_key(session=session, actor=actor_of(acme), grace=timedelta(0))
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=rotate_and_hold)
    holder.start()
    try:
        assert holding.wait(30)
        with pytest.raises(OperationalError) as raised, write_scope() as session:
            api_keys.rotate_key(session=session, actor=actor_of(acme), grace=timedelta(0))
        assert db_module.describe_failure(raised.value) == db_module.BUSY
    finally:
        release.set()
        holder.join(60)
    with write_scope() as session:  # its turn comes once the other rotation commits
        api_keys.rotate_key(session=session, actor=actor_of(acme), grace=timedelta(0))
        keys = session.exec(select(ApiKey).where(ApiKey.organization_id == acme.organization_id)).all()
    assert len(keys) == 3 and sum(key.expires_at is None for key in keys) == 1


def test_a_handoff_code_redeemed_twice_at_once_gives_one_token(pg: None) -> None:
    user = admin_of('Acme')
    for _ in range(5):
        with write_scope() as session:
            code = sessions.start(session=session, user=user, ip=None, user_agent='test')

        def trade(code: str = code) -> str | None:
            with write_scope() as session:
                return sessions.complete_handoff(session=session, code=code, previous_token=None)

        tokens = at_once(trade, trade)
        assert sum(isinstance(token, str) for token in tokens) == 1 and tokens.count(None) == 1
        with write_scope() as session:
            assert handoff.redeem(session=session, model=BrowserSession, code=code) is None


def test_a_recovery_code_used_twice_at_once_signs_in_once(pg: None) -> None:
    user = admin_of('Acme')
    _, codes = enrol(user)
    first, second = pending_token(user), pending_token(user)

    def use(token: str) -> two_factor.CodeOutcome:
        with write_scope() as session:
            return two_factor.check_sign_in_code(session=session, token=token, code=codes[0], ip='192.0.2.1')

    outcomes = at_once(lambda: use(first), lambda: use(second))
    assert sorted(outcome.user is not None for outcome in outcomes) == [False, True]
    with write_scope() as session:
        left = session.exec(
            select(func.count()).where(RecoveryCode.user_id == user.id, col(RecoveryCode.used_at).is_(None))
        ).one()
    assert left == two_factor.RECOVERY_CODE_COUNT - 1


def test_one_authenticator_code_entered_twice_at_once_signs_in_once(pg: None) -> None:
    user = admin_of('Acme')
    secret, _ = enrol(user)
    first, second = pending_token(user), pending_token(user)
    code = code_for(secret, steps_ahead=1)

    def enter(token: str) -> two_factor.CodeOutcome:
        with write_scope() as session:
            return two_factor.check_sign_in_code(session=session, token=token, code=code, ip='192.0.2.1')

    outcomes = at_once(lambda: enter(first), lambda: enter(second))
    assert sorted(outcome.user is not None for outcome in outcomes) == [False, True]


def test_one_pending_sign_in_finished_twice_at_once_makes_one_sign_in(pg: None) -> None:
    """A code in one tab and a recovery code in another, for one pending sign-in: one of them finishes it."""
    user = admin_of('Acme')
    secret, codes = enrol(user)
    token = pending_token(user)

    def enter(code: str) -> two_factor.CodeOutcome:
        with write_scope() as session:
            return two_factor.check_sign_in_code(session=session, token=token, code=code, ip='192.0.2.1')

    outcomes = at_once(lambda: enter(code_for(secret, steps_ahead=1)), lambda: enter(codes[0]))
    accepted = [outcome for outcome in outcomes if isinstance(outcome, two_factor.CodeOutcome) and outcome.user]
    assert len(accepted) == 1
    assert [type(outcome) for outcome in outcomes if outcome not in accepted] == [two_factor.SignInExpired]


def test_wrong_codes_entered_at_once_all_count(pg: None) -> None:
    user = admin_of('Acme')
    enrol(user)
    tokens = [pending_token(user) for _ in range(5)]
    with write_scope() as session:  # the first one alone: the account's count exists when the others come at once
        two_factor.check_sign_in_code(session=session, token=tokens.pop(), code='000000', ip='192.0.2.1')

    def wrong(token: str) -> two_factor.CodeOutcome:
        with write_scope() as session:
            return two_factor.check_sign_in_code(session=session, token=token, code='000000', ip='192.0.2.1')

    at_once(*[lambda token=token: wrong(token) for token in tokens])
    with write_scope() as session:
        stored = session.get_one(CodeLock, user.id)
    assert stored.failures == 5


def test_a_reset_link_used_twice_at_once_sets_one_password(pg: None) -> None:
    user = admin_of('Acme')
    with write_scope() as session:
        issued = password_reset.request_reset(session=session, email=user.email)
    assert issued is not None
    token, hashes = token_of(issued), [auth.hash_password('first new password'), auth.hash_password('other new one')]

    def reset(password_hash: str) -> User:
        with write_scope() as session:
            return password_reset.reset_password(session=session, token=token, password_hash=password_hash)

    results = at_once(lambda: reset(hashes[0]), lambda: reset(hashes[1]))
    assert sum(isinstance(result, User) for result in results) == 1
    assert [str(result) for result in results if isinstance(result, ValidationFailed)] == [
        password_reset.STATE_MESSAGES[password_reset.LinkState.USED]
    ]


def test_reset_links_requested_at_once_stay_within_the_hourly_limit(pg: None) -> None:
    user = admin_of('Acme')

    def request() -> password_reset.IssuedReset | None:
        with write_scope() as session:
            return password_reset.request_reset(session=session, email=user.email)

    issued = at_once(*[request] * (password_reset.HOURLY_LIMIT + 3))
    assert sum(result is not None for result in issued) == password_reset.HOURLY_LIMIT


def test_one_passkey_signing_in_twice_at_once_with_one_count_signs_in_once(
    pg: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two answers carrying the same signature count (a cloned authenticator): the second is checked against the
    count the first stored, and refused."""
    user, authenticator = admin_of('Acme'), SoftAuthenticator(origin=PUBLIC_URL)
    slot = passkeys.ChallengeSlot()
    with write_scope() as session:
        options = passkeys.registration_options(session=session, actor=user, challenge=slot.issue())
        passkeys.add_passkey(
            session=session, actor=user, name='Laptop', credential=authenticator.create(options), challenge=slot.take()
        )
    challenges = [b'a' * 32, b'b' * 32]
    answers = [authenticator.get(passkeys.sign_in_options(challenge=challenge), counter=7) for challenge in challenges]

    def sign_in_with(index: int) -> passkeys.PasskeySignIn:
        with write_scope() as session:  # from two addresses: the per-address throttle does not line them up
            return passkeys.sign_in(
                session=session, credential=answers[index], challenge=challenges[index], ip=f'198.51.100.{index}'
            )

    outcomes = at_once(lambda: sign_in_with(0), lambda: sign_in_with(1))
    assert sorted(outcome.user is not None for outcome in outcomes) == [False, True]
    with write_scope() as session:
        assert session.exec(select(Passkey.sign_count)).one() == 7


def test_two_setups_at_once_create_one_organization(pg: None) -> None:
    password_hash = auth.hash_password(DEFAULT_PASSWORD)

    def set_up(email: str) -> User:
        with write_scope() as session:
            return auth.create_first_admin(
                session=session, organization_name='Acme', name='Ada', email=email, password_hash=password_hash
            )

    results = at_once(lambda: set_up('ada@example.com'), lambda: set_up('eve@example.com'))
    assert sorted(type(result).__name__ for result in results) == [PermissionDenied.__name__, User.__name__]
    with write_scope() as session:
        assert session.exec(select(func.count()).select_from(Organization)).one() == 1
        assert session.exec(select(func.count()).select_from(User)).one() == 1


def test_one_address_invited_twice_at_once_gets_one_invitation(pg: None) -> None:
    admin = admin_of('Acme')

    def invite() -> invitations.IssuedInvitation:
        with write_scope() as session:
            return invitations.invite_member(session=session, actor=admin, email='max@example.com', role='member')

    issued = at_once(invite, invite)
    assert all(isinstance(result, invitations.IssuedInvitation) for result in issued)
    assert [result.resent for result in issued].count(True) == 1
    with write_scope() as session:
        assert session.exec(select(func.count()).select_from(Invitation)).one() == 1


def test_recovery_codes_renewed_twice_at_once_leave_one_set(pg: None) -> None:
    user = admin_of('Acme')
    enrol(user)

    def renew() -> list[str]:
        with write_scope() as session:
            return two_factor.new_recovery_codes(session=session, actor=actor_of(user))

    at_once(renew, renew)
    with write_scope() as session:
        count = session.exec(select(func.count()).where(RecoveryCode.user_id == user.id)).one()
    assert count == two_factor.RECOVERY_CODE_COUNT


def test_the_last_admins_demoted_at_once_leave_one_admin(pg: None) -> None:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        ada, bob = (make_user(session, organization=organization, role=Role.ADMIN) for _ in range(2))

    def demote(actor: User, member: User) -> User:
        with write_scope() as session:
            return members.change_role(session=session, actor=actor_of(actor), member_id=member.id or 0, role='member')

    results = at_once(lambda: demote(ada, bob), lambda: demote(bob, ada))
    assert sum(isinstance(result, User) for result in results) == 1
    with write_scope() as session:
        admins = session.exec(select(func.count()).where(User.role == Role.ADMIN)).one()
    assert admins == 1


def test_an_admin_removed_while_their_rotation_waits_for_the_organization_is_refused(pg: None) -> None:
    """The role is checked once the organization's lock is held: a removal that commits while the rotation waits
    for it counts."""
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        ada, bob = (make_user(session, organization=organization, role=Role.ADMIN) for _ in range(2))
        api_keys.generate_key(session=session, actor=ada)
    holding, release = threading.Event(), threading.Event()

    def remove_bob_and_hold() -> None:
        with write_scope() as session:
            members.remove_member(session=session, actor=actor_of(ada), member_id=bob.id or 0)
            holding.set()
            release.wait(60)

    def rotate_as_bob() -> str:
        with write_scope() as session:
            return api_keys.rotate_key(session=session, actor=actor_of(bob), grace=timedelta(0))

    remover = threading.Thread(target=remove_bob_and_hold)
    remover.start()
    rotation: list[Any] = []
    try:
        assert holding.wait(30)
        rotator = threading.Thread(target=lambda: rotation.extend(at_once(rotate_as_bob)))
        rotator.start()
        waiting = 0
        while waiting == 0 and rotator.is_alive():  # until the rotation waits for the organization's row
            with db_module.read_connection() as connection:
                waiting = connection.exec_driver_sql(WAITING_FOR_A_LOCK).scalar_one()
    finally:
        release.set()
        remover.join(60)
    rotator.join(60)
    assert waiting == 1
    assert [type(result) for result in rotation] == [PermissionDenied]


def test_a_session_used_while_it_is_ended_elsewhere_is_found_ended(pg: None) -> None:
    """`Sign out everywhere` commits between a page's read of its session and its write: the page is told the
    session has ended (no error), and no row comes back."""
    user = admin_of('Acme')
    with write_scope() as session:
        code = sessions.start(session=session, user=user, ip=None, user_agent='test')
    with write_scope() as session:
        token = sessions.complete_handoff(session=session, code=code, previous_token=None)
        signed = sessions.signed_in(session=session, token=token)
    assert signed is not None
    with write_scope() as session:
        sessions.signed_in(session=session, token=token)  # the page has read its session in this transaction
        at_once(lambda: end_all(user))
        sessions.touch(session=session, session_id=signed.session_id)
        with pytest.raises(NotFound):
            sessions.password_entered(session=session, session_id=signed.session_id)
    with write_scope() as session:
        assert session.get(BrowserSession, signed.session_id) is None


def end_all(user: User) -> int:
    with write_scope() as session:
        return sessions.end_all(session=session, user_id=user.id or 0)
