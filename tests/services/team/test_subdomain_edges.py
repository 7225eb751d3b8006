"""Kustomer subdomains at their edges: a pasted URL the URL parser rejects, a cleared organization subdomain, and
both fields wrong at once."""

import pytest

from models import User
from services.db import read_scope, write_scope
from services.errors import ValidationFailed
from services.team import organizations
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
    with (
        pytest.raises(ValidationFailed, match='Enter your Kustomer subdomain, like acme') as raised,
        write_scope() as session,
    ):
        organizations.update_subdomains(session=session, actor=admin, subdomain=cleared, sandbox_subdomain='acme-test')
    assert raised.value.field == 'subdomain'
    assert saved(admin) == ('acme', 'acme-test')


def test_the_message_says_what_a_valid_subdomain_looks_like(admin: User) -> None:
    with pytest.raises(ValidationFailed) as raised, write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='acme_support', sandbox_subdomain='')
    assert str(raised.value) == (
        'Not a valid subdomain: use letters, digits and hyphens, like acme or https://acme.kustomerapp.com'
    )


@pytest.mark.parametrize(
    ('subdomain', 'sandbox', 'expected'),
    [
        ('bad name', '-bad', {'subdomain': 'Not a valid subdomain', 'sandbox_subdomain': 'Not a valid subdomain'}),
        ('', 'bad_one', {'subdomain': 'Enter your Kustomer subdomain', 'sandbox_subdomain': 'Not a valid subdomain'}),
        ('bad name', 'fine', {'subdomain': 'Not a valid subdomain'}),
        ('acme', 'ACME.kustomerapp.com', {'sandbox_subdomain': 'The sandbox must differ'}),
    ],
)
def test_every_invalid_field_is_named_at_once(
    admin: User, subdomain: str, sandbox: str, expected: dict[str, str]
) -> None:
    with pytest.raises(ValidationFailed) as raised, write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain=subdomain, sandbox_subdomain=sandbox)
    errors = raised.value.errors
    assert list(errors) == list(expected)
    for field, start in expected.items():
        assert (errors[field] or '').startswith(start), errors
    assert raised.value.field == next(iter(expected))  # the first one is also the error's own field and message
    assert str(raised.value) == errors[raised.value.field]
    assert saved(admin) == ('acme', 'acme-test')
