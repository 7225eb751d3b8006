"""Password guessing, attacked the ways it was on main: a stranger locking the owner out, a burst of parallel guesses
racing the limit, one address spraying many accounts, many addresses on one account, and the password dialog."""

import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditAction, AuditEvent, LoginFailure, Role, User
from models.base import stored_id, utcnow
from services.db import write_scope
from services.errors import InvalidCredentials, LoginLocked, PermissionDenied, ReauthenticationRequired
from services.identity import attempts, auth
from services.team import members
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in

WRONG = 'not the password'


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        organization = make_organization(session)
        return {
            'admin': make_user(session, organization=organization, email='ada@example.com'),
            'member': make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER),
        }


def guess(email: str, ip: str, password: str = WRONG) -> str:
    """One sign-in attempt; what the person is told."""
    try:
        sign_in(email, password, ip=ip)
    except (InvalidCredentials, LoginLocked) as refused:
        return str(refused)
    return 'signed in'


def test_a_strangers_guesses_do_not_lock_the_owner_out(team: dict[str, User]) -> None:
    for _ in range(5):
        assert guess('ada@example.com', '203.0.113.9') == 'Invalid email or password'
    assert guess('ada@example.com', '203.0.113.9') == 'Too many failed attempts. Try again in 15 minutes.'
    # The owner, from their own address, is not locked out by someone else's five guesses.
    assert guess('ada@example.com', '198.51.100.7', DEFAULT_PASSWORD) == 'signed in'


def test_parallel_guesses_never_get_past_the_limit(team: dict[str, User]) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def attack() -> None:
        start.wait()
        outcomes.append(guess('ada@example.com', '203.0.113.9'))

    threads = [threading.Thread(target=attack) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every attempt claims its place before bcrypt runs: exactly 5 reach the password check.
    assert outcomes.count('Invalid email or password') == 5
    assert outcomes.count('Too many failed attempts. Try again in 15 minutes.') == 7


def test_one_address_cannot_spray_many_accounts(team: dict[str, User]) -> None:
    for number in range(attempts.ADDRESS_LIMIT):
        assert guess(f'someone-{number}@example.com', '203.0.113.9') == 'Invalid email or password'
    assert guess('ada@example.com', '203.0.113.9', DEFAULT_PASSWORD).startswith('Too many failed attempts')
    assert guess('ada@example.com', '198.51.100.7', DEFAULT_PASSWORD) == 'signed in'


def test_many_addresses_cannot_guess_one_account_without_end(team: dict[str, User]) -> None:
    for number in range(attempts.ACCOUNT_LIMIT):
        assert guess('max@example.com', f'10.0.{number // 250}.{number % 250}') == 'Invalid email or password'
    assert guess('max@example.com', '198.51.100.7', DEFAULT_PASSWORD).startswith('Too many failed attempts')


def test_an_admin_unlocks_a_member_and_it_is_audited(team: dict[str, User]) -> None:
    for _ in range(5):
        guess('max@example.com', '192.0.2.1')
    assert guess('max@example.com', '192.0.2.1', DEFAULT_PASSWORD).startswith('Too many failed attempts')
    with write_scope() as session:
        assert attempts.locked_emails(session=session, emails=['max@example.com', 'ada@example.com']) == {
            'max@example.com'
        }
        auth.unlock(session=session, actor=team['admin'], email='max@example.com', ip='192.0.2.50')
    assert guess('max@example.com', '192.0.2.1', DEFAULT_PASSWORD) == 'signed in'
    with write_scope() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == AuditAction.LOGIN_UNLOCKED)).one()
        assert (event.actor_email, event.target) == ('ada@example.com', 'max@example.com')


def test_only_an_admin_of_the_same_organization_unlocks(team: dict[str, User]) -> None:
    with write_scope() as session:
        stranger = make_user(session, organization=make_organization(session))
    with pytest.raises(PermissionDenied), write_scope() as session:
        auth.unlock(session=session, actor=team['member'], email='ada@example.com')
    with pytest.raises(PermissionDenied), write_scope() as session:
        auth.unlock(session=session, actor=stranger, email='max@example.com')


def confirm(user: User, password: str, ip: str = '192.0.2.1') -> str:
    """The `Confirm your password` dialog's three steps, as the page runs them."""
    try:
        with write_scope() as session:
            attempt = auth.begin_password_confirmation(session=session, user=user, ip=ip)
    except LoginLocked as locked:
        return str(locked)
    password_ok = auth.check_attempt_password(attempt, password)
    with write_scope() as session:
        confirmed = auth.finish_password_confirmation(
            session=session, attempt=attempt, password_ok=password_ok, user=user
        )
    return 'confirmed' if confirmed else 'wrong'


def test_the_password_dialog_counts_and_audits_wrong_passwords(team: dict[str, User]) -> None:
    admin = team['admin']
    assert [confirm(admin, WRONG) for _ in range(5)] == ['wrong'] * 5
    assert confirm(admin, DEFAULT_PASSWORD).startswith('Too many failed attempts')
    with write_scope() as session:
        failures = session.exec(
            select(AuditEvent).where(AuditEvent.action == AuditAction.PASSWORD_CONFIRM_FAILED)
        ).all()
    assert len(failures) == 5 and {event.actor_email for event in failures} == {admin.email}
    assert confirm(admin, DEFAULT_PASSWORD, ip='198.51.100.7') == 'confirmed'


def test_failure_records_are_pruned_after_a_day(team: dict[str, User]) -> None:
    with write_scope() as session:
        session.add(LoginFailure(email='old@example.com', ip='192.0.2.1', created_at=utcnow() - timedelta(days=2)))
    guess('ada@example.com', '192.0.2.1')
    with write_scope() as session:
        assert [row.email for row in session.exec(select(LoginFailure))] == ['ada@example.com']


def test_changing_a_role_needs_a_recent_password(team: dict[str, User]) -> None:
    with pytest.raises(ReauthenticationRequired), write_scope() as session:
        members.change_role(
            session=session,
            actor=acting(session, team['admin'], password_minutes_ago=11),
            member_id=stored_id(team['member']),
            role='admin',
        )
