"""The organization's settings: Kustomer subdomains (normalization, validation, saving) and origins."""

import pytest
from sqlmodel import select

from models import AuditAction, AuditEvent, Role
from services.db import write_scope
from services.errors import PermissionDenied, ValidationFailed
from services.team import organizations
from tests.factories import make_organization, make_user


@pytest.mark.parametrize(
    ('raw', 'expected'),
    [
        ('acme', 'acme'),
        ('ACME', 'acme'),
        ('  acme  ', 'acme'),
        ('acme.kustomerapp.com', 'acme'),
        ('ACME.KustomerApp.com', 'acme'),
        ('acme.kustomerapp.com.', 'acme'),
        ('https://acme.kustomerapp.com/app/x', 'acme'),
        ('http://acme.kustomerapp.com', 'acme'),
        ('https://acme.kustomerapp.com:443/app/customers?x=1#y', 'acme'),
        ('acme.kustomerapp.com/app/tasks', 'acme'),
        ('my-company', 'my-company'),
        ('a', 'a'),
        ('0', '0'),
        ('acme2024', 'acme2024'),
        ('x' * 63, 'x' * 63),
        ('', None),
        ('   ', None),
    ],
)
def test_valid_input_is_normalized(raw: str, expected: str | None) -> None:
    assert organizations.normalize_subdomain(raw) == expected


@pytest.mark.parametrize(
    'raw',
    [
        '-acme',
        'acme-',
        'ac_me',
        'acme corp',
        'x' * 64,
        'acme.example.com',
        'sub.acme.kustomerapp.com',
        'kustomerapp.com',
        '.kustomerapp.com',
        'https://',
        'acmé',
        'acme!',
        'https://evil.com/acme.kustomerapp.com',
        'ftp://[::1]/',
        '://acme',
    ],
)
def test_invalid_input_is_refused_with_the_inline_message(raw: str) -> None:
    with pytest.raises(ValidationFailed, match='Not a valid subdomain'):
        organizations.normalize_subdomain(raw)


def test_admin_saves_normalized_subdomains(database: None) -> None:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session))
    with write_scope() as session:
        organization = organizations.update_subdomains(
            session=session,
            actor=admin,
            subdomain='https://Acme.kustomerapp.com/app',
            sandbox_subdomain='acme-sandbox',
        )
    assert (organization.kustomer_subdomain, organization.kustomer_sandbox_subdomain) == ('acme', 'acme-sandbox')


def test_saving_unchanged_subdomains_records_nothing(database: None) -> None:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session))
    for raw in ('acme', 'https://acme.kustomerapp.com', 'ACME'):
        with write_scope() as session:
            organizations.update_subdomains(session=session, actor=admin, subdomain=raw, sandbox_subdomain='')
    with write_scope() as session:
        entries = session.exec(select(AuditEvent).where(AuditEvent.action == AuditAction.SUBDOMAINS_UPDATED)).all()
    assert len(entries) == 1


def test_invalid_value_saves_nothing(database: None) -> None:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session))
    with write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='acme', sandbox_subdomain='sandbox')
    with pytest.raises(ValidationFailed) as raised, write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='other', sandbox_subdomain='bad_one')
    assert raised.value.field == 'sandbox_subdomain'
    with write_scope() as session:
        organization = organizations.get_organization(session=session, actor=admin)
    assert (organization.kustomer_subdomain, organization.kustomer_sandbox_subdomain) == ('acme', 'sandbox')


def test_sandbox_must_differ_and_empty_sandbox_clears(database: None) -> None:
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session))
    with pytest.raises(ValidationFailed, match='differ') as raised, write_scope() as session:
        organizations.update_subdomains(
            session=session, actor=admin, subdomain='acme', sandbox_subdomain='ACME.kustomerapp.com'
        )
    assert raised.value.field == 'sandbox_subdomain'
    with write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='acme', sandbox_subdomain='sbx')
    with write_scope() as session:
        organization = organizations.update_subdomains(
            session=session, actor=admin, subdomain='acme', sandbox_subdomain=''
        )
    assert organization.kustomer_sandbox_subdomain is None


def test_member_cannot_save_subdomains(database: None) -> None:
    with write_scope() as session:
        member = make_user(session, organization=make_organization(session), role=Role.MEMBER)
    with pytest.raises(PermissionDenied), write_scope() as session:
        organizations.update_subdomains(session=session, actor=member, subdomain='acme', sandbox_subdomain=None)


@pytest.mark.parametrize(
    ('origin', 'expected'),
    [
        ('https://acme.kustomerapp.com', 'acme'),
        ('http://acme.kustomerapp.com', None),
        ('https://acme.kustomerapp.com.evil.com', None),
        ('https://evil-acme.kustomerapp.com.', None),
        ('https://a.b.kustomerapp.com', None),
        (None, None),
    ],
)
def test_subdomain_from_origin(origin: str | None, expected: str | None) -> None:
    assert organizations.subdomain_from_origin(origin) == expected
