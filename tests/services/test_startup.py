"""Start-up: processes starting together on one PostgreSQL database all become ready; sends cut short by a crash are
marked `Email failed` (interrupted; resend)."""

import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from models import DeliveryStatus, Invitation, Role, User
from models.base import stored_id
from services import config, db
from services.db import read_scope, write_scope
from services.identity import invitations
from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT
from tests.factories import make_organization, make_user, random_email
from tests.postgres_server import PostgresServer

TOGETHER = 4  # processes started at once on one empty database


def test_processes_starting_together_on_an_empty_postgresql_database_all_become_ready(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    apps = []
    for index in range(TOGETHER):
        (tmp_path / f'app{index}').mkdir()
        apps.append(AppProcess(REPO_ROOT, tmp_path / f'app{index}', env={'CXT_DATABASE_URL': url}))
    started = time.monotonic()
    try:
        for app in apps:
            app.spawn()
        for app in apps:
            app.wait_ready()  # raises with the app's log if it exited (the migration race) or never answered
        print(f'{TOGETHER} processes ready {time.monotonic() - started:.1f} s after they were started together')
        for app in apps:
            assert httpx.get(f'{app.url}/api/health', timeout=5).status_code == 200
            assert httpx.get(f'{app.url}/api/ready', timeout=5).json() == {'status': 'ready'}
    finally:
        for app in apps:
            app.stop()


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session), role=Role.ADMIN)


def invite_with_status(actor: User, status: DeliveryStatus, error: str | None = None) -> int:
    with write_scope() as session:
        issued = invitations.invite_member(session=session, actor=actor, email=random_email('new'), role='member')
        invitation = session.get_one(Invitation, issued.invitation_id)
        invitation.delivery_status, invitation.last_error = status, error
        session.add(invitation)
        return issued.invitation_id


def delivery(invitation_id: int) -> tuple[DeliveryStatus, str | None]:
    with read_scope() as session:
        invitation = session.get_one(Invitation, invitation_id)
        return invitation.delivery_status, invitation.last_error


def test_sends_cut_short_become_email_failed_and_the_others_are_left_alone(admin: User) -> None:
    sending = [invite_with_status(admin, DeliveryStatus.SENDING) for _ in range(2)]
    sent = invite_with_status(admin, DeliveryStatus.SENT)
    failed = invite_with_status(admin, DeliveryStatus.FAILED, 'mailbox unavailable')
    not_emailed = invite_with_status(admin, DeliveryStatus.NOT_EMAILED)
    with write_scope() as session:
        assert invitations.mark_interrupted_sends(session=session) == 2
    for invitation_id in sending:
        assert delivery(invitation_id) == (DeliveryStatus.FAILED, 'interrupted; resend')
    assert DeliveryStatus.FAILED.label == 'Email failed'
    assert delivery(sent) == (DeliveryStatus.SENT, None)
    assert delivery(failed) == (DeliveryStatus.FAILED, 'mailbox unavailable')
    assert delivery(not_emailed) == (DeliveryStatus.NOT_EMAILED, None)
    with write_scope() as session:
        assert invitations.mark_interrupted_sends(session=session) == 0


def test_a_send_that_finishes_after_another_process_marked_it_keeps_its_real_outcome(admin: User) -> None:
    with write_scope() as session:
        issued = invitations.invite_member(session=session, actor=admin, email=random_email('new'), role='member')
        session.get_one(Invitation, issued.invitation_id).delivery_status = DeliveryStatus.SENDING
    with write_scope() as session:  # a second process starting on PostgreSQL while this send is in flight
        invitations.mark_interrupted_sends(session=session)
    with write_scope() as session:
        invitations.record_delivery(session=session, issued=issued, error=None)
    assert delivery(issued.invitation_id) == (DeliveryStatus.SENT, None)


def test_the_app_marks_interrupted_sends_when_it_starts(admin: User, tmp_path: Path) -> None:
    interrupted = invite_with_status(admin, DeliveryStatus.SENDING)
    db.get_engine().dispose()
    database_url = config.current_settings().database_url  # PostgreSQL's, or None: SQLite in the data directory
    app = AppProcess(REPO_ROOT, tmp_path, env={'CXT_DATABASE_URL': database_url} if database_url else None)
    assert app.data_dir.resolve() == (tmp_path / 'data').resolve()
    app.start()
    try:
        assert delivery(interrupted) == (DeliveryStatus.FAILED, 'interrupted; resend')
        with read_scope() as session:
            assert [stored_id(row) for row in session.exec(select(Invitation)).all()] == [interrupted]
    finally:
        app.stop()
