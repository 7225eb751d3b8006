"""The API key before it exists and with nothing left in grace: reveal, rotate and revoke-old at their edges."""

from datetime import timedelta

import pytest
from sqlmodel import col, select

from models import ApiKey, AuditEvent, User
from services.db import read_connection, read_scope, write_scope
from services.errors import NotFound
from services.keys import api_keys
from tests.factories import acting, make_organization, make_user


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


def audit_trail() -> list[tuple[str, str | None]]:
    with read_scope() as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    return [(event.action, event.target) for event in events]


def test_revealing_before_any_key_exists_says_to_generate_one_and_is_not_audited(admin: User) -> None:
    with pytest.raises(NotFound, match=r'There is no API key yet\. Generate one first\.'), write_scope() as session:
        api_keys.reveal_key(session=session, actor=acting(session, admin))
    assert audit_trail() == []


def test_rotating_before_any_key_exists_issues_the_first_key(admin: User) -> None:
    with write_scope() as session:
        key = api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(hours=1))
    with read_connection() as connection:
        verified = api_keys.verify_key(connection=connection, key=key)
    assert verified is not None and verified.organization_name == 'Acme'
    with read_scope() as session:
        overview = api_keys.get_overview(session=session, actor=admin)
    assert overview.active is not None and overview.active.last4 == key[-4:]
    assert overview.in_grace == [], 'there was no old key to keep in grace'
    ((action, target),) = audit_trail()
    assert action == 'api_key.rotated'
    assert target is not None and target.startswith(f'none → {api_keys.mask(key[-4:])}')


def test_the_active_key_cannot_be_revoked_as_an_old_key(admin: User) -> None:
    with write_scope() as session:
        key = api_keys.generate_key(session=session, actor=admin)
    with write_scope() as session:
        active = api_keys.get_overview(session=session, actor=admin).active
        assert active is not None
    with pytest.raises(NotFound), write_scope() as session:
        api_keys.revoke_old_key(session=session, actor=acting(session, admin), key_id=active.id or 0)
    with read_scope() as session:
        (stored,) = session.exec(select(ApiKey)).all()
    assert stored.expires_at is None, 'the active key is not an old key'
    with read_connection() as connection:
        assert api_keys.verify_key(connection=connection, key=key) is not None
    assert [action for action, _ in audit_trail()] == ['api_key.generated'], 'no empty "old keys revoked" entry'
