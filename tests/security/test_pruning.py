"""Ended sessions and handoff codes nobody redeemed stayed in the database forever on main (`sessions.prune` had no
caller): the app now deletes them at start-up and every 10 minutes, and nothing still valid."""

import asyncio
from datetime import timedelta

import pytest
from nicegui.testing import User
from sqlmodel import Session, col, select

from models import BrowserSession, PendingSignIn
from models.base import utcnow
from services.db import write_scope
from services.identity import sessions, two_factor
from services.operations import housekeeping
from tests.factories import make_organization, make_user
from tests.ui.helpers import from_database, in_database, set_up_organization
from ui import housekeeping as schedule


def dead_and_live_rows(session: Session) -> dict[str, int]:
    """One row of each kind that can never count again, and a live session and a fresh handoff code; their ids."""
    user = make_user(session, organization=make_organization(session))
    ids = {}
    for name in ('live', 'fresh_code', 'expired', 'idle', 'stale_code', 'pending_live', 'pending_expired'):
        if name.startswith('pending'):
            code = two_factor.begin_pending(session=session, user=user, ip=None, user_agent=None)
            assert code
            row = session.exec(select(PendingSignIn).order_by(col(PendingSignIn.id).desc())).first()
            assert row is not None
            if name == 'pending_expired':
                row.expires_at = utcnow() - timedelta(seconds=1)
        else:
            code = sessions.start(session=session, user=user, ip=None, user_agent=None)
            if name not in {'fresh_code', 'stale_code'}:
                assert sessions.complete_handoff(session=session, code=code, previous_token=None)
            row = session.exec(select(BrowserSession).order_by(col(BrowserSession.id).desc())).first()
            assert row is not None
            if name == 'expired':
                row.expires_at = utcnow() - timedelta(seconds=1)
            elif name == 'idle':
                row.last_seen_at = utcnow() - sessions.IDLE_TIMEOUT - timedelta(minutes=1)
            elif name == 'stale_code':
                row.created_at = utcnow() - timedelta(minutes=2)
        session.add(row)
        session.flush()
        assert row.id is not None
        ids[name] = row.id
    return ids


def remaining(session: Session, ids: dict[str, int]) -> set[str]:
    left = set()
    for name, row_id in ids.items():
        model = PendingSignIn if name.startswith('pending') else BrowserSession
        if session.get(model, row_id) is not None:
            left.add(name)
    return left


def test_a_pass_deletes_what_ended_and_keeps_what_is_valid(database: None) -> None:
    with write_scope() as session:
        ids = dead_and_live_rows(session)
    with write_scope() as session:
        pruned = housekeeping.prune_expired(session=session)
    with write_scope() as session:
        assert remaining(session, ids) == {'live', 'fresh_code', 'pending_live'}
    assert (pruned.sessions, pruned.pending_sign_ins) == (3, 1)


@pytest.fixture
def prune_every_half_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule, 'PRUNE_INTERVAL', 0.5)


async def test_the_running_app_prunes_on_its_own(prune_every_half_second: None, user: User) -> None:
    await set_up_organization(user)  # a signed-in admin: their session must survive every pass
    ids = await in_database(dead_and_live_rows)
    for _ in range(100):
        left = await from_database(lambda session: remaining(session, ids))
        if left == {'live', 'fresh_code', 'pending_live'}:
            break
        await asyncio.sleep(0.1)
    assert left == {'live', 'fresh_code', 'pending_live'}, 'nothing pruned the ended rows'
    await user.open('/')
    await user.should_see('Signed in as')
