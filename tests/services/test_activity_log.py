"""The Activity tab's log: the admin's own organization only, newest first, capped; members may not read it."""

import pytest

from models import AuditAction, Role, User
from services import audit
from services.db import read_scope, write_scope
from services.errors import PermissionDenied
from tests.factories import make_organization, make_user


@pytest.fixture
def people(database: None) -> dict[str, User]:
    with write_scope() as session:
        acme = make_organization(session, name='Acme')
        return {
            'admin': make_user(session, organization=acme, role=Role.ADMIN),
            'member': make_user(session, organization=acme, role=Role.MEMBER),
            'outsider': make_user(session, organization=make_organization(session, name='Other Co')),
        }


def log(actor: User, target: str) -> None:
    with write_scope() as session:
        audit.record_event(
            session=session,
            organization_id=actor.organization_id,
            actor=actor,
            action=AuditAction.SUBDOMAINS_UPDATED,
            target=target,
        )


def test_an_admin_reads_their_organizations_events_newest_first(people: dict[str, User]) -> None:
    for target in ('first', 'second', 'third'):
        log(people['admin'], target)
    log(people['outsider'], 'not for Acme')
    with read_scope() as session:
        events = audit.list_events(session=session, actor=people['admin'])
    assert [event.target for event in events] == ['third', 'second', 'first']
    assert {event.actor_email for event in events} == {people['admin'].email}


def test_the_log_shows_only_the_newest_events_up_to_the_limit(people: dict[str, User]) -> None:
    for number in range(5):
        log(people['admin'], f'change {number}')
    with read_scope() as session:
        events = audit.list_events(session=session, actor=people['admin'], limit=2)
    assert [event.target for event in events] == ['change 4', 'change 3']


def test_members_cannot_read_the_log(people: dict[str, User]) -> None:
    log(people['admin'], 'first')
    with pytest.raises(PermissionDenied, match=r'Only admins can do that\.'), read_scope() as session:
        audit.list_events(session=session, actor=people['member'])
