"""Kustomer subdomains at their edges: a pasted URL the URL parser rejects, and a cleared organization subdomain."""

import pytest

from models import User
from services import organizations
from services.db import read_scope, write_scope
from services.errors import ValidationFailed
from tests.factories import make_organization, make_user


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session))
    with write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='acme', sandbox_subdomain='acme-test')
    return admin


def saved(admin: User) -> tuple[str | None, str | None]:
    with read_scope() as session:
        organization = organizations.get_organization(session=session, actor=admin)
    return organization.kustomer_subdomain, organization.kustomer_sandbox_subdomain


@pytest.mark.parametrize(
    'pasted', ['https://[acme.kustomerapp.com/app', 'https://acme].kustomerapp.com', 'https://[acme]/']
)
@pytest.mark.parametrize('field', ['subdomain', 'sandbox_subdomain'])
def test_a_pasted_url_with_a_stray_bracket_gets_the_inline_message_and_saves_nothing(
    admin: User, pasted: str, field: str
) -> None:
    values = {'subdomain': 'other', 'sandbox_subdomain': 'other-test', field: pasted}
    with pytest.raises(ValidationFailed, match='Not a valid subdomain') as raised, write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, **values)
    assert raised.value.field == field
    assert saved(admin) == ('acme', 'acme-test')


@pytest.mark.parametrize('cleared', ['', '   ', None])
def test_the_organization_subdomain_cannot_be_cleared(admin: User, cleared: str | None) -> None:
    with pytest.raises(ValidationFailed, match='Not a valid subdomain') as raised, write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain=cleared, sandbox_subdomain='acme-test')
    assert raised.value.field == 'subdomain'
    assert saved(admin) == ('acme', 'acme-test')
