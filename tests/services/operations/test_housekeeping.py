"""The scheduled pass (`ui/housekeeping.py` calls it) as a use case, without NiceGUI: it deletes what can never count
again, in its own transaction, and keeps what still can."""

from datetime import timedelta

from sqlmodel import select

from models import BrowserSession
from models.base import utcnow
from services.acting import SCOPES
from services.db import read_scope, write_scope
from services.identity import sessions
from services.operations import housekeeping
from tests.factories import make_organization, make_user


def test_a_pass_deletes_an_expired_session_and_keeps_a_live_one(database: None) -> None:
    with write_scope() as session:
        user = make_user(session, organization=make_organization(session))
        codes = [sessions.start(session=session, user=user, ip=None, user_agent=None) for _ in range(2)]
        for code in codes:
            assert sessions.complete_handoff(session=session, code=code, previous_token=None)
        expired, live = session.exec(select(BrowserSession).order_by(BrowserSession.id)).all()  # type: ignore[arg-type]
        expired.expires_at = utcnow() - timedelta(seconds=1)
        session.add(expired)
        kept = live.id
    pruned = housekeeping.prune(scopes=SCOPES)
    assert (pruned.sessions, pruned.total) == (1, 1)
    with read_scope() as session:
        assert [row.id for row in session.exec(select(BrowserSession)).all()] == [kept]
    assert housekeeping.prune(scopes=SCOPES).total == 0
