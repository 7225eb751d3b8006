import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlmodel import Session

from models import User
from services import config, db
from services.db import write_scope
from services.keys import api_keys
from services.team import organizations
from tests.factories import acting, make_organization, make_user

ENDPOINT = '/api/v1/organization'
T = TypeVar('T')


async def in_transaction(change: Callable[[Session], T]) -> T:
    """Run `change` in its own write transaction, off the event loop (as the dashboard does)."""

    def run() -> T:
        with write_scope() as session:
            return change(session)

    return await asyncio.to_thread(run)


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme Support'))


@pytest.fixture
def key(admin: User) -> str:
    with write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='acme', sandbox_subdomain='acme-sbx')
        return api_keys.generate_key(session=session, actor=admin)


async def test_bearer_key_gets_the_organization_routing(client: httpx.AsyncClient, admin: User, key: str) -> None:
    response = await client.get(ENDPOINT, headers={'Authorization': f'Bearer {key}'})
    assert response.status_code == 200
    assert response.json() == {
        'organization': {'id': admin.organization_id, 'name': 'Acme Support'},
        'kustomer': {
            'subdomain': 'acme',
            'url': 'https://acme.kustomerapp.com',
            'sandbox_subdomain': 'acme-sbx',
            'sandbox_url': 'https://acme-sbx.kustomerapp.com',
        },
    }


async def test_x_api_key_header_works_too(client: httpx.AsyncClient, key: str) -> None:
    response = await client.get(ENDPOINT, headers={'X-API-Key': key})
    assert response.status_code == 200
    assert response.json()['organization']['name'] == 'Acme Support'


async def test_unset_subdomains_are_null(client: httpx.AsyncClient, admin: User) -> None:
    key = await in_transaction(lambda session: api_keys.generate_key(session=session, actor=admin))
    body = (await client.get(ENDPOINT, headers={'X-API-Key': key})).json()
    assert body['kustomer'] == {'subdomain': None, 'url': None, 'sandbox_subdomain': None, 'sandbox_url': None}


@pytest.mark.parametrize(
    'headers',
    [
        {},
        {'Authorization': 'Bearer '},
        {'Authorization': 'Bearer cxt_' + 'A' * 40},
        {'Authorization': 'Basic dXNlcjpwYXNz'},
        {'X-API-Key': 'cxt_' + 'z' * 10_000},
        {'X-API-Key': 'garbage'},
    ],
)
async def test_missing_or_unknown_key_is_401_json(client: httpx.AsyncClient, key: str, headers: dict) -> None:
    response = await client.get(ENDPOINT, headers=headers)
    assert response.status_code == 401
    assert response.headers['www-authenticate'] == 'Bearer'
    assert response.json()['error'] == 'invalid_api_key'
    assert set(response.json()) == {'error', 'message'}


async def test_rotated_away_key_is_refused_on_the_very_next_request(
    client: httpx.AsyncClient,
    admin: User,
    key: str,
) -> None:
    assert (await client.get(ENDPOINT, headers={'X-API-Key': key})).status_code == 200
    new_key = await in_transaction(
        lambda session: api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(0))
    )
    assert (await client.get(ENDPOINT, headers={'X-API-Key': key})).status_code == 401
    assert (await client.get(ENDPOINT, headers={'X-API-Key': new_key})).status_code == 200


async def test_grace_key_works_until_revoked(client: httpx.AsyncClient, admin: User, key: str) -> None:
    await in_transaction(
        lambda session: api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(hours=1))
    )
    assert (await client.get(ENDPOINT, headers={'X-API-Key': key})).status_code == 200
    await in_transaction(
        lambda session: api_keys.revoke_old_key(
            session=session,
            actor=acting(session, admin),
            key_id=api_keys.get_overview(session=session, actor=admin).in_grace[0].id or 0,
        )
    )
    assert (await client.get(ENDPOINT, headers={'X-API-Key': key})).status_code == 401


@pytest.mark.parametrize('origin', ['https://acme.kustomerapp.com', 'https://acme-sbx.kustomerapp.com'])
async def test_cors_is_granted_to_saved_subdomains(client: httpx.AsyncClient, key: str, origin: str) -> None:
    response = await client.get(ENDPOINT, headers={'X-API-Key': key, 'Origin': origin})
    assert response.headers['access-control-allow-origin'] == origin
    preflight = await client.options(
        ENDPOINT,
        headers={
            'Origin': origin,
            'Access-Control-Request-Method': 'GET',
            'Access-Control-Request-Headers': 'authorization',
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers['access-control-allow-origin'] == origin
    assert 'authorization' in preflight.headers['access-control-allow-headers'].lower()
    assert 'GET' in preflight.headers['access-control-allow-methods']


@pytest.mark.parametrize(
    'origin',
    [
        'https://evil.kustomerapp.com',
        'http://acme.kustomerapp.com',
        'https://acme.kustomerapp.com.evil.com',
        'https://evil.example.com',
        'null',
    ],
)
async def test_cors_is_not_granted_to_other_origins(client: httpx.AsyncClient, key: str, origin: str) -> None:
    response = await client.get(ENDPOINT, headers={'X-API-Key': key, 'Origin': origin})
    assert response.status_code == 200
    assert 'access-control-allow-origin' not in response.headers
    preflight = await client.options(ENDPOINT, headers={'Origin': origin, 'Access-Control-Request-Method': 'GET'})
    assert 'access-control-allow-origin' not in preflight.headers


async def test_other_organizations_subdomain_gets_no_grant_with_this_key(
    client: httpx.AsyncClient,
    key: str,
) -> None:
    def other_organization_saves_globex(session: Session) -> None:
        other_admin = make_user(session, organization=make_organization(session))
        organizations.update_subdomains(session=session, actor=other_admin, subdomain='globex', sandbox_subdomain='')

    await in_transaction(other_organization_saves_globex)
    response = await client.get(ENDPOINT, headers={'X-API-Key': key, 'Origin': 'https://globex.kustomerapp.com'})
    assert response.status_code == 200
    assert 'access-control-allow-origin' not in response.headers


@pytest.mark.parametrize('method', ['POST', 'PUT', 'DELETE'])
async def test_other_methods_are_not_allowed(client: httpx.AsyncClient, key: str, method: str) -> None:
    response = await client.request(method, ENDPOINT, headers={'X-API-Key': key})
    assert response.status_code == 405
    assert response.headers['allow'] == 'GET, OPTIONS'  # OPTIONS: the CORS preflight


async def test_health_is_ok_while_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get('/api/health')
    assert (response.status_code, response.json()) == (200, {'status': 'ok'})


@pytest.mark.sqlite_only(
    'the database is gone when its SQLite files are deleted (PostgreSQL stopped: tests/api/test_readiness.py)'
)
async def test_health_stays_ok_when_the_database_is_gone_and_ready_says_missing(client: httpx.AsyncClient) -> None:
    """Health is liveness (the process runs); the database's absence is readiness's answer."""
    database_file = Path(config.current_settings().resolved_database_url.removeprefix('sqlite:///'))
    db.get_engine().dispose()
    for path in database_file.parent.glob(database_file.name + '*'):
        path.unlink()
    response = await client.get('/api/health')
    assert (response.status_code, response.json()) == (200, {'status': 'ok'})
    response = await client.get('/api/ready')
    assert (response.status_code, response.json()['reason']) == (503, 'missing')
