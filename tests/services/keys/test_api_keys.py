import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from models import ApiKey, AuditEvent, Role, User
from models.base import utcnow
from services import config
from services.db import hot_read_connection, read_connection, write_scope
from services.errors import PermissionDenied, ReauthenticationRequired, ValidationFailed
from services.keys import api_keys
from tests.factories import acting, make_organization, make_user


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


def generate(actor: User) -> str:
    with write_scope() as session:
        return api_keys.generate_key(session=session, actor=actor)


def rotate(actor: User, grace: timedelta = timedelta(0)) -> str:
    with write_scope() as session:
        return api_keys.rotate_key(session=session, actor=acting(session, actor), grace=grace)


def verify(key: str | None) -> api_keys.VerifiedKey | None:
    with read_connection() as connection:
        return api_keys.verify_key(connection=connection, key=key)


def test_generated_key_has_prefix_and_40_base62_characters(admin: User) -> None:
    key = generate(admin)
    assert re.fullmatch(r'cxt_[A-Za-z0-9]{40}', key)
    verified = verify(key)
    assert verified is not None and verified.organization_name == 'Acme'


def test_second_generate_is_refused(admin: User) -> None:
    generate(admin)
    with pytest.raises(ValidationFailed, match='already has an API key'):
        generate(admin)


def test_mask_shows_prefix_dots_and_last_four(admin: User) -> None:
    key = generate(admin)
    with write_scope() as session:
        overview = api_keys.get_overview(session=session, actor=admin)
    assert overview.masked.startswith('cxt_•')
    assert overview.masked.endswith(key[-4:])
    assert key[4:-4] not in overview.masked


def test_reveal_returns_the_key_and_is_audited(admin: User) -> None:
    key = generate(admin)
    with write_scope() as session:
        assert api_keys.reveal_key(session=session, actor=acting(session, admin, ip='10.0.0.9')) == key
    with write_scope() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == 'api_key.revealed')).one()
    assert (event.actor_email, event.ip) == (admin.email, '10.0.0.9')


def test_reveal_and_rotate_need_a_recent_password(admin: User) -> None:
    generate(admin)
    with pytest.raises(ReauthenticationRequired), write_scope() as session:
        api_keys.reveal_key(session=session, actor=acting(session, admin, password_minutes_ago=11))
    with pytest.raises(ReauthenticationRequired), write_scope() as session:
        api_keys.rotate_key(
            session=session, actor=acting(session, admin, password_minutes_ago=None), grace=timedelta(0)
        )


def test_immediate_rotation_kills_the_old_key_on_the_next_request(admin: User) -> None:
    old = generate(admin)
    assert verify(old) is not None
    new = rotate(admin)
    assert new != old
    assert verify(old) is None
    assert verify(new) is not None


def test_grace_rotation_keeps_the_old_key_until_it_expires(admin: User) -> None:
    old = generate(admin)
    new = rotate(admin, timedelta(hours=1))
    assert verify(old) is not None and verify(new) is not None
    with write_scope() as session:
        overview = api_keys.get_overview(session=session, actor=admin)
        assert [key.last4 for key in overview.in_grace] == [old[-4:]]
        # The grace window has run out.
        stored = session.exec(select(ApiKey).where(ApiKey.last4 == old[-4:])).one()
        stored.expires_at = utcnow() - timedelta(seconds=1)
        session.add(stored)
    assert verify(old) is None
    assert verify(new) is not None


def test_each_grace_notice_revokes_its_own_key(admin: User) -> None:
    oldest = generate(admin)
    older = rotate(admin, timedelta(hours=24))
    newest = rotate(admin, timedelta(hours=24))  # two rotations: two old keys in their grace windows
    with write_scope() as session:
        in_grace = api_keys.get_overview(session=session, actor=admin).in_grace
        by_last4 = {key.last4: key.id for key in in_grace}
        revoked = api_keys.revoke_old_key(
            session=session, actor=acting(session, admin), key_id=by_last4[oldest[-4:]] or 0
        )
    assert revoked.last4 == oldest[-4:]
    assert verify(oldest) is None
    assert verify(older) is not None, 'the other old key keeps its grace window'
    assert verify(newest) is not None
    with pytest.raises(ValidationFailed, match='has already stopped working'), write_scope() as session:
        api_keys.revoke_old_key(session=session, actor=acting(session, admin), key_id=by_last4[oldest[-4:]] or 0)


def test_rotation_offers_seven_days_of_grace(admin: User) -> None:
    assert list(api_keys.GRACE_CHOICES) == ['Immediately', 'In 1 hour', 'In 24 hours', 'In 7 days']
    old = generate(admin)
    before = utcnow()
    new = rotate(admin, api_keys.GRACE_CHOICES['In 7 days'])
    assert verify(old) is not None and verify(new) is not None
    with write_scope() as session:
        (kept,) = api_keys.get_overview(session=session, actor=admin).in_grace
    assert kept.last4 == old[-4:] and kept.expires_at is not None
    assert timedelta(days=7) <= kept.expires_at - before < timedelta(days=7, minutes=1)


def test_unsupported_grace_is_refused(admin: User) -> None:
    generate(admin)
    with pytest.raises(ValidationFailed):
        rotate(admin, timedelta(days=30))


@pytest.mark.parametrize(
    'garbage',
    [
        None,
        '',
        'cxt_',
        'cxt_' + 'A' * 40,
        'not-a-key',
        'cxt_' + 'x' * 10_000,
        'x' * 10_000,
        'cxt_ünïcödé🔑ключ',
        '\x00\x01',
        'cxt_' + '\udcff' * 3,
        "cxt_' OR 1=1 --",
    ],
)
def test_verify_refuses_garbage(admin: User, garbage: str | None) -> None:
    generate(admin)
    assert verify(garbage) is None


def test_last_used_is_recorded_at_most_once_a_minute(admin: User) -> None:
    key = generate(admin)
    verify(key)
    with write_scope() as session:
        first = session.exec(select(ApiKey.last_used_at)).one()
    assert first is not None and utcnow() - first < timedelta(seconds=5)
    verify(key)
    with write_scope() as session:
        assert session.exec(select(ApiKey.last_used_at)).one() == first


def test_members_cannot_generate_reveal_or_rotate(admin: User) -> None:
    with write_scope() as session:
        organization_id = admin.organization_id
        member = User(
            organization_id=organization_id, email='m@example.com', name='M', password_hash='x', role=Role.MEMBER
        )
        session.add(member)
    with pytest.raises(PermissionDenied), write_scope() as session:
        api_keys.generate_key(session=session, actor=member)
    generate(admin)
    with pytest.raises(PermissionDenied), write_scope() as session:
        api_keys.reveal_key(session=session, actor=acting(session, member))
    with pytest.raises(PermissionDenied), write_scope() as session:
        api_keys.rotate_key(session=session, actor=acting(session, member), grace=timedelta(0))


def test_keys_are_scoped_to_their_organization(admin: User) -> None:
    generate(admin)
    with write_scope() as session:
        other_admin = make_user(session, organization=make_organization(session, name='Other'))
    with write_scope() as session:
        assert api_keys.get_overview(session=session, actor=other_admin).active is None
    other_key = generate(other_admin)
    verified = verify(other_key)
    assert verified is not None and verified.organization_name == 'Other'


def test_concurrent_rotations_leave_exactly_one_active_key(admin: User) -> None:
    generate(admin)
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def worker() -> None:
        try:
            barrier.wait()
            rotate(admin)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with write_scope() as session:
        keys = session.exec(select(ApiKey).where(ApiKey.organization_id == admin.organization_id)).all()
    assert len(keys) == 21
    assert sum(key.expires_at is None for key in keys) == 1


@pytest.mark.sqlite_only('the database files it scans are SQLite files')
def test_no_plaintext_key_anywhere_in_the_database_files(admin: User) -> None:
    keys = [generate(admin)]
    with write_scope() as session:
        api_keys.reveal_key(session=session, actor=acting(session, admin))
    keys.append(rotate(admin, timedelta(hours=1)))
    keys.append(rotate(admin))
    with write_scope() as session:
        api_keys.reveal_key(session=session, actor=acting(session, admin))
    database_file = Path(config.current_settings().resolved_database_url.removeprefix('sqlite:///'))
    # Checkpoint so the WAL is folded in, then scan the main file and whatever is left beside it.
    sqlite3.connect(database_file).execute('PRAGMA wal_checkpoint(TRUNCATE)').close()
    files = [path for path in database_file.parent.iterdir() if path.name.startswith(database_file.name)]
    contents = b''.join(path.read_bytes() for path in files)
    assert len(contents) > 0
    for key in keys:
        assert key.encode() not in contents
        assert key[4:].encode() not in contents


def test_cached_grace_key_still_expires_by_the_clock(admin: User) -> None:
    old = generate(admin)
    rotate(admin, timedelta(hours=1))
    with write_scope() as session:
        stored = session.exec(select(ApiKey).where(ApiKey.last4 == old[-4:])).one()
        expires_at = stored.expires_at = utcnow() + timedelta(minutes=5)
        session.add(stored)
    with hot_read_connection() as connection:
        assert api_keys.verify_key(connection=connection, key=old) is not None  # now cached
        later = expires_at + timedelta(seconds=1)
        assert api_keys.verify_key(connection=connection, key=old, now=later) is None


@pytest.mark.sqlite_only('another process writes the SQLite file')
def test_change_from_another_process_is_seen_on_the_next_lookup(admin: User) -> None:
    key = generate(admin)
    with hot_read_connection() as connection:
        assert api_keys.verify_key(connection=connection, key=key) is not None
    database_file = config.current_settings().resolved_database_url.removeprefix('sqlite:///')
    expire = "UPDATE api_key SET expires_at = '2000-01-01 00:00:00.000000'"
    subprocess.run(
        [
            sys.executable,
            '-c',
            f'import sqlite3; c = sqlite3.connect({database_file!r}); c.execute({expire!r}); c.commit()',
        ],
        check=True,
        timeout=30,
    )
    with hot_read_connection() as connection:
        assert api_keys.verify_key(connection=connection, key=key) is None


@pytest.mark.sqlite_only("SQLite's writer lock")
def test_last_used_write_never_waits_for_a_busy_database(admin: User) -> None:
    key = generate(admin)
    database_file = config.current_settings().resolved_database_url.removeprefix('sqlite:///')
    blocker = sqlite3.connect(database_file, isolation_level=None)
    blocker.execute('BEGIN IMMEDIATE')  # another writer holds the lock
    try:
        start = time.perf_counter()
        with hot_read_connection() as connection:
            assert api_keys.verify_key(connection=connection, key=key) is not None
        assert time.perf_counter() - start < 5.0  # far below the 15 s busy timeout it would otherwise wait
    finally:
        blocker.execute('ROLLBACK')
        blocker.close()
    with write_scope() as session:
        assert session.exec(select(ApiKey.last_used_at)).one() is None
    with hot_read_connection() as connection:
        assert api_keys.verify_key(connection=connection, key=key) is not None
    with write_scope() as session:
        assert session.exec(select(ApiKey.last_used_at)).one() is not None
