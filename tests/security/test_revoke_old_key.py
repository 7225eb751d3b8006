"""`Revoke old key now` asked for in a forged event, without the dialog: the service refuses it without a recent
password, from a member, or across organizations, and the old key keeps working."""

from datetime import timedelta

import pytest

from models import Role, User
from models.base import utcnow
from services.db import read_scope, write_scope
from services.errors import NotFound, PermissionDenied, ReauthenticationRequired
from services.keys import api_keys
from tests.factories import acting, make_organization, make_user


@pytest.fixture
def keyed(database: None) -> dict[str, object]:
    with write_scope() as session:
        organization = make_organization(session)
        admin = make_user(session, organization=organization, role=Role.ADMIN)
        member = make_user(session, organization=organization, role=Role.MEMBER)
        stranger = make_user(session, organization=make_organization(session), role=Role.ADMIN)
        api_keys.generate_key(session=session, actor=admin)
        api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(hours=1))
        (in_grace,) = api_keys.get_overview(session=session, actor=admin).in_grace
        return {'admin': admin, 'member': member, 'stranger': stranger, 'old_id': in_grace.id}


def revoke(actor: User, key_id: int, confirmed_minutes_ago: float) -> None:
    with write_scope() as session:
        api_keys.revoke_old_key(
            session=session, actor=acting(session, actor, password_minutes_ago=confirmed_minutes_ago), key_id=key_id
        )


@pytest.mark.parametrize(
    ('who', 'minutes', 'refusal'),
    [('admin', 11, ReauthenticationRequired), ('member', 0, PermissionDenied), ('stranger', 0, NotFound)],
)
def test_revoking_an_old_key_is_refused_without_a_recent_password_or_the_right(
    keyed: dict, who: str, minutes: float, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        revoke(keyed[who], keyed['old_id'], minutes)
    with read_scope() as session:
        (still,) = api_keys.get_overview(session=session, actor=keyed['admin']).in_grace
    assert still.expires_at is not None and still.expires_at > utcnow() + timedelta(minutes=50)
    revoke(keyed['admin'], keyed['old_id'], 1)  # with a password entered a minute ago it goes through
    with read_scope() as session:
        assert api_keys.get_overview(session=session, actor=keyed['admin']).in_grace == []
