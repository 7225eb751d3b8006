"""Which open pages' sessions have ended (`ui/open_pages.py` sends those pages away), without NiceGUI."""

from models import Organization, Role, User
from models.base import stored_id
from services.db import read_scope, write_scope
from services.identity import sessions
from services.team import members
from tests.factories import acting, make_organization, make_user


def signed_in_browser(user: User) -> str:
    with write_scope() as session:
        code = sessions.start(session=session, user=user, ip=None, user_agent=None)
    with write_scope() as session:
        token = sessions.complete_handoff(session=session, code=code, previous_token=None)
    assert token is not None
    return token


def test_ended_pages_name_the_organization_a_removed_person_left(database: None) -> None:
    with write_scope() as session:
        organization = make_organization(session, name='Acme Support')
        ada = make_user(session, organization=organization, role=Role.ADMIN)
        max_ = make_user(session, organization=organization, role=Role.MEMBER)
    ada_token, max_token, signed_out_token = signed_in_browser(ada), signed_in_browser(max_), signed_in_browser(ada)
    with write_scope() as session:
        sessions.end(session=session, token=signed_out_token)
        members.remove_member(session=session, actor=acting(session, ada), member_id=stored_id(max_))
    pages = {
        'ada': (stored_id(ada), ada_token),
        'max': (stored_id(max_), max_token),
        'signed out': (stored_id(ada), signed_out_token),
        'no cookie': (stored_id(ada), None),
    }
    with read_scope() as session:
        assert session.get_one(Organization, organization.id).name == 'Acme Support'
        ended = sessions.ended_pages(session=session, pages=pages)
    assert ended == {'max': 'Acme Support', 'signed out': None, 'no cookie': None}
