"""On PostgreSQL, two uses of one link at the same moment: the second waits for the first and is told it was used.

SQLite serializes writers up front (BEGIN IMMEDIATE), so there the second sees the used link before it starts.
PostgreSQL lets both check the link, then makes the second's claim wait on the first's row lock: the claim itself
must refuse it. The first transaction is held open here until the second is seen waiting for that lock.
"""

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from models import Role, User
from services import config, db
from services.db import read_scope, write_scope
from services.errors import InvalidCredentials, ValidationFailed
from services.identity import auth, invitations, password_reset
from tests.factories import make_organization, make_user, sign_in
from tests.postgres_server import PostgresServer

FIRST_PASSWORD = 'the first new password'
SECOND_PASSWORD = 'the second new password'


@pytest.fixture
def admin(postgres: PostgresServer, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[User]:
    monkeypatch.setenv('CXT_DATABASE_URL', postgres.create_database())
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    assert engine.dialect.name == 'postgresql'
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session, name='Acme'), role=Role.ADMIN)
    yield admin
    engine.dispose()


def token_of(link: str) -> str:
    return urlsplit(link).path.rsplit('/', 1)[1]


def waiting_for_a_lock() -> int:
    with db.get_engine().connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()


def race(first: Callable[[Session], object], second: Callable[[Session], object]) -> tuple[object, object]:
    """`first` in a transaction held open until `second`, started meanwhile in its own, waits on a lock; then both
    end. What each returned or raised."""
    outcomes: dict[str, object] = {}
    first_ran, release = threading.Event(), threading.Event()

    def run(name: str, work: Callable[[Session], object], hold: bool) -> None:
        try:
            with write_scope() as session:
                outcomes[name] = work(session)
                if hold:
                    first_ran.set()
                    release.wait(timeout=30)
        except BaseException as error:
            outcomes[name] = error
        finally:
            first_ran.set()

    holder = threading.Thread(target=run, args=('first', first, True))
    holder.start()
    assert first_ran.wait(timeout=30)
    waiter = threading.Thread(target=run, args=('second', second, False))
    waiter.start()
    deadline = time.monotonic() + 30
    while waiting_for_a_lock() == 0:
        assert waiter.is_alive(), f'the second use ended without waiting: {outcomes.get("second")!r}'
        assert time.monotonic() < deadline, 'the second use never waited for the first'
        time.sleep(0.02)
    release.set()
    holder.join(timeout=30)
    waiter.join(timeout=30)
    return outcomes['first'], outcomes['second']


def test_two_accepts_of_one_invitation_at_once_create_one_account(admin: User) -> None:
    with write_scope() as session:
        issued = invitations.invite_member(session=session, actor=admin, email='grace@example.com', role='member')
    token = token_of(issued.link)
    first_hash, second_hash = auth.new_password_hash(FIRST_PASSWORD), auth.new_password_hash(SECOND_PASSWORD)

    first, second = race(
        lambda session: invitations.accept_invitation(
            session=session, token=token, name='Grace in tab one', password_hash=first_hash
        ),
        lambda session: invitations.accept_invitation(
            session=session, token=token, name='Grace in tab two', password_hash=second_hash
        ),
    )

    assert isinstance(first, User) and first.name == 'Grace in tab one'
    assert isinstance(second, ValidationFailed) and str(second) == 'This invitation has already been used'
    with read_scope() as session:
        (account,) = session.exec(select(User).where(User.email == 'grace@example.com')).all()
    assert account.id == first.id
    assert sign_in('grace@example.com', FIRST_PASSWORD).id == first.id


def test_two_resets_with_one_link_at_once_set_one_password(admin: User) -> None:
    with write_scope() as session:
        issued = password_reset.request_reset(session=session, email=admin.email)
    assert issued is not None
    token = token_of(issued.link)
    first_hash, second_hash = auth.new_password_hash(FIRST_PASSWORD), auth.new_password_hash(SECOND_PASSWORD)

    first, second = race(
        lambda session: password_reset.reset_password(session=session, token=token, password_hash=first_hash),
        lambda session: password_reset.reset_password(session=session, token=token, password_hash=second_hash),
    )

    assert isinstance(first, User) and first.id == admin.id
    assert isinstance(second, ValidationFailed) and str(second) == 'This reset link has already been used'
    assert sign_in(admin.email, FIRST_PASSWORD).id == admin.id
    with pytest.raises(InvalidCredentials):
        sign_in(admin.email, SECOND_PASSWORD)
