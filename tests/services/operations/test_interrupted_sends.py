"""Invitations left `Sending…` by a process that died: marked by owner (process id + heartbeat), on a schedule, and
published. They used to be marked only when a process started, and then every process's sends were marked, a live
one on another process included, and no event told the open pages."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from models import DeliveryStatus, Invitation, ProcessHeartbeat, Role, User
from models.base import utcnow
from services import events
from services.db import read_scope, write_scope
from services.identity import invitations
from services.operations import send_watch
from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT
from tests.factories import make_organization, make_user, random_email

SECRET_KEY = 'one-secret-for-both-processes-0123456789abcdef'


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session), role=Role.ADMIN)


def sending(admin: User, owner: str | None, *, beat_age: timedelta | None) -> int:
    """An invitation `Sending…` owned by process `owner`, whose last heartbeat was `beat_age` ago (None: never)."""
    with write_scope() as session:
        issued = invitations.invite_member(session=session, actor=admin, email=random_email('new'), role='member')
        invitation = session.get_one(Invitation, issued.invitation_id)
        invitation.delivery_status, invitation.sending_owner = DeliveryStatus.SENDING, owner
        if owner is not None and beat_age is not None:
            session.merge(ProcessHeartbeat(process_id=owner, beat_at=utcnow() - beat_age))
        return issued.invitation_id


def delivery(invitation_id: int) -> tuple[DeliveryStatus, str | None]:
    with read_scope() as session:
        invitation = session.get_one(Invitation, invitation_id)
        return invitation.delivery_status, invitation.last_error


def test_only_sends_of_processes_that_are_gone_are_marked(admin: User) -> None:
    alive = sending(admin, 'alive-process', beat_age=timedelta(seconds=1))
    stale = sending(admin, 'dead-process', beat_age=invitations.HEARTBEAT_STALE_AFTER + timedelta(seconds=1))
    never_beat = sending(admin, 'never-beat', beat_age=None)
    with write_scope() as session:
        assert invitations.mark_interrupted_sends(session=session) == 2
    assert delivery(alive) == (DeliveryStatus.SENDING, None)
    assert delivery(stale) == (DeliveryStatus.FAILED, invitations.INTERRUPTED)
    assert delivery(never_beat) == (DeliveryStatus.FAILED, invitations.INTERRUPTED)


def test_this_process_s_own_send_survives_its_own_sweep_while_it_beats(admin: User) -> None:
    with write_scope() as session:
        invitations.beat(session=session)
    own = sending(admin, events.PROCESS_ID, beat_age=None)
    assert send_watch.tick() == 0
    assert delivery(own) == (DeliveryStatus.SENDING, None)


def test_marking_publishes_the_team_change(pg_database: str) -> None:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session), role=Role.ADMIN)
    orphan = sending(admin, 'dead-process', beat_age=None)
    with listening(pg_database) as heard:
        marked: list[list[int]] = []
        assert send_watch.tick(marked.append) == 1
        assert marked == [[admin.organization_id]]
        event = next_event(heard, timeout=5)
    assert delivery(orphan)[0] == DeliveryStatus.FAILED
    assert (event.kind, event.organization_id) == (events.EventKind.TEAM_CHANGED, admin.organization_id)


class listening:
    """LISTEN on the events channel of the database at `url`, as another process does."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> psycopg.Connection:
        self.connection = psycopg.connect(events.driver_url(self.url), autocommit=True)
        self.connection.execute(f'LISTEN {events.CHANNEL}')
        return self.connection

    def __exit__(self, *_: object) -> None:
        self.connection.close()


def next_event(connection: psycopg.Connection, *, timeout: float) -> events.Event:
    for notify in connection.notifies(timeout=timeout, stop_after=1):
        event = events.parse(notify.payload)
        assert event is not None
        return event
    raise AssertionError(f'no event within {timeout} s')


class StallingMailServer:
    """A mail server that greets forever (`220-` continuation lines, one a second, so the client never times out)
    until released: a send in flight for as long as the test wants."""

    def __init__(self) -> None:
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self.connected = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        self.connected.set()
        with connection:
            while not self.released.wait(1.0):
                try:
                    connection.sendall(b'220-still thinking\r\n')
                except OSError:
                    return  # the sender died

    def close(self) -> None:
        self.released.set()
        self.listener.close()


SENDER = """
import sys
from models import User
from services import config, db
from services.identity import invitations
from services.operations import send_watch
from services.db import write_scope

settings = config.load_settings()
config.configure(settings)
db.init_database(settings.resolved_database_url)
with write_scope() as session:
    invitations.beat(session=session)
send_watch.start_watching()  # this process beats for as long as it lives
with write_scope() as session:
    admin = session.get_one(User, int(sys.argv[1]))
    issued = invitations.invite_member(session=session, actor=admin, email=sys.argv[2], role='member')
print(issued.invitation_id, flush=True)
invitations.send_invitation_email(issued)  # the mail server stalls: killed here
"""


@pytest.fixture
def mail_server() -> Iterator[StallingMailServer]:
    server = StallingMailServer()
    yield server
    server.close()


def test_a_process_killed_mid_send_is_marked_by_the_live_one_and_a_live_send_never_is(
    pg_database: str, mail_server: StallingMailServer, tmp_path: Path
) -> None:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session), role=Role.ADMIN)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith('CXT_') and name not in {'PYTEST_CURRENT_TEST', 'NICEGUI_STORAGE_PATH'}
    }
    env |= {
        'CXT_DATABASE_URL': pg_database,
        'CXT_SECRET_KEY': SECRET_KEY,
        'CXT_DATA_DIR': str(tmp_path / 'sender-data'),
        'CXT_SMTP_HOST': '127.0.0.1',
        'CXT_SMTP_PORT': str(mail_server.port),
        'CXT_SMTP_SECURITY': 'none',
    }
    sender = subprocess.Popen(
        [sys.executable, '-c', SENDER, str(admin.id), random_email('invited')],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    (tmp_path / 'b').mkdir()
    other = AppProcess(REPO_ROOT, tmp_path / 'b', env={'CXT_DATABASE_URL': pg_database, 'CXT_SECRET_KEY': SECRET_KEY})
    try:
        assert sender.stdout is not None and sender.stderr is not None
        invitation_id = int(sender.stdout.readline() or '0')
        assert invitation_id, sender.stderr.read() if sender.poll() is not None else 'no invitation id'
        assert mail_server.connected.wait(30), 'the sender never reached the mail server'
        assert delivery(invitation_id) == (DeliveryStatus.SENDING, None)

        other.start()  # its start-up sweep runs while the send is in flight
        # And its scheduled sweeps, for longer than a dead process's heartbeat lasts:
        time.sleep(invitations.HEARTBEAT_STALE_AFTER.total_seconds() + 3 * send_watch.BEAT_INTERVAL)
        assert delivery(invitation_id) == (DeliveryStatus.SENDING, None), 'a live send was marked interrupted'

        with listening(pg_database) as heard:
            sender.send_signal(signal.SIGKILL)
            sender.wait(timeout=10)
            killed_at = time.monotonic()
            event = next_event(heard, timeout=invitations.HEARTBEAT_STALE_AFTER.total_seconds() + 20)
        waited = time.monotonic() - killed_at
        assert delivery(invitation_id) == (DeliveryStatus.FAILED, invitations.INTERRUPTED)
        assert (event.kind, event.organization_id) == (events.EventKind.TEAM_CHANGED, admin.organization_id)
        assert event.origin != events.PROCESS_ID  # published by the live app process, not by this test
        print(f'marked and published {waited:.1f} s after the kill')
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(timeout=10)
        other.stop()
