"""`GET /metrics`: only with CXT_METRICS_TOKEN and its bearer token; counters move when the product is used; the label
set stays bounded whatever paths clients make up."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api import create_api_app
from api.observability import install_observability
from models import User
from services import config
from services.db import write_scope
from services.errors import ExternalServiceError, InvalidCredentials, LoginLocked
from services.identity import invitations
from services.keys import api_keys
from services.team import organizations
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in
from tests.smtp_server import SmtpServer, free_port, mail_env, point_settings_at, smtp_server  # noqa: F401

TOKEN = 'metrics-token-' + secrets.token_hex(8)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def use_settings(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    config.configure(config.load_settings())


@pytest.fixture
async def app_client(database: None) -> AsyncIterator[httpx.AsyncClient]:
    """The API app as main.py serves it: with the request middleware counting."""
    app = create_api_app()
    install_observability(app, metrics_on=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url='http://test') as client:
        yield client


@pytest.fixture
def metrics_on(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, CXT_METRICS_TOKEN=TOKEN)


@pytest.fixture
def admin(database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme Support'))


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get('/metrics', headers={'Authorization': f'Bearer {TOKEN}'})
    assert response.status_code == 200
    assert response.headers['content-type'].startswith('text/plain; version=')
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_not_served_while_no_token_is_configured(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get('/metrics', headers={'Authorization': 'Bearer anything-at-all-here'})
    assert response.status_code == 404
    assert 'cxt_' not in response.text


@pytest.mark.usefixtures('metrics_on')
async def test_refused_without_the_right_bearer_token(app_client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {'Authorization': 'Bearer wrong-token-wrong-token'},
        {'Authorization': TOKEN},
        {'X-API-Key': TOKEN},
    ):
        response = await app_client.get('/metrics', headers=headers)
        assert response.status_code == 401, headers
        assert response.headers['www-authenticate'].startswith('Bearer')
        assert 'cxt_' not in response.text
    samples = await scrape(app_client)
    for name in (
        'cxt_http_requests_total',
        'cxt_api_key_verifications_total',
        'cxt_sign_ins_total',
        'cxt_ui_connections',
        'cxt_database_ready',
        'cxt_events_listening',
        'process_cpu_seconds_total',
    ):
        assert any(sample_name == name for sample_name, _ in samples), name
    assert value(samples, 'cxt_database_ready') == 1.0  # as /api/ready decides: this database can save


@pytest.mark.usefixtures('metrics_on')
async def test_widget_api_calls_are_counted_by_result_and_route(app_client: httpx.AsyncClient, admin: User) -> None:
    def keys() -> tuple[str, str]:
        with write_scope() as session:
            organizations.update_subdomains(session=session, actor=admin, subdomain='acme', sandbox_subdomain=None)
            old_key = api_keys.generate_key(session=session, actor=admin)
        with write_scope() as session:
            return old_key, api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(hours=1))

    old_key, new_key = await asyncio.to_thread(keys)
    before = await scrape(app_client)

    for key, status in ((new_key, 200), (new_key, 200), (old_key, 200), ('cxt_' + 'x' * 40, 401), (None, 401)):
        headers = {'Authorization': f'Bearer {key}'} if key else {}
        assert (await app_client.get('/api/v1/organization', headers=headers)).status_code == status

    after = await scrape(app_client)
    verifications = 'cxt_api_key_verifications_total'
    assert value(after, verifications, result='ok') - value(before, verifications, result='ok') == 2
    assert value(after, verifications, result='grace') - value(before, verifications, result='grace') == 1
    assert value(after, verifications, result='invalid') - value(before, verifications, result='invalid') == 2
    requests = 'cxt_http_requests_total'
    labels = {'route': '/api/v1/organization', 'method': 'GET'}
    assert value(after, requests, **labels, status='200') - value(before, requests, **labels, status='200') == 3
    assert value(after, requests, **labels, status='401') - value(before, requests, **labels, status='401') == 2
    durations = 'cxt_http_request_duration_seconds_count'
    assert (
        value(after, durations, route='/api/v1/organization') - value(before, durations, route='/api/v1/organization')
        == 5
    )
    # No label anywhere holds a key.
    scraped = (await app_client.get('/metrics', headers={'Authorization': f'Bearer {TOKEN}'})).text
    assert new_key not in scraped and old_key not in scraped and new_key[4:12] not in scraped


@pytest.mark.usefixtures('metrics_on')
async def test_sign_ins_are_counted_by_result(app_client: httpx.AsyncClient, admin: User) -> None:
    before = await scrape(app_client)

    def sign_ins() -> None:
        sign_in(admin.email, DEFAULT_PASSWORD)
        for _ in range(5):
            with pytest.raises(InvalidCredentials):
                sign_in(admin.email, 'not the password', ip='192.0.2.7')
        with pytest.raises(LoginLocked):
            sign_in(admin.email, DEFAULT_PASSWORD, ip='192.0.2.7')

    await asyncio.to_thread(sign_ins)

    after = await scrape(app_client)

    def moved(result: str) -> float:
        name = 'cxt_sign_ins_total'
        return value(after, name, method='password', result=result) - value(
            before, name, method='password', result=result
        )

    assert (moved('ok'), moved('failed'), moved('locked')) == (1, 5, 1)
    scraped = (await app_client.get('/metrics', headers={'Authorization': f'Bearer {TOKEN}'})).text
    assert admin.email not in scraped and '192.0.2.7' not in scraped


async def test_mails_are_counted_by_kind_and_result(
    mail_env: SmtpServer,  # noqa: F811
    app_client: httpx.AsyncClient,
    admin: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_settings(monkeypatch, CXT_METRICS_TOKEN=TOKEN)
    before = await scrape(app_client)

    def invite() -> invitations.IssuedInvitation:
        with write_scope() as session:
            return invitations.invite_member(
                session=session, actor=admin, email='new.person@example.com', role='member'
            )

    issued = await asyncio.to_thread(invite)
    await asyncio.to_thread(invitations.send_invitation_email, issued)
    assert len(mail_env.wait_for(1)) == 1  # really delivered to the SMTP server

    point_settings_at(monkeypatch, '127.0.0.1', free_port(), timeout=1)  # nothing listens there
    use_settings(monkeypatch, CXT_METRICS_TOKEN=TOKEN)
    with pytest.raises(ExternalServiceError, match='mail server'):
        await asyncio.to_thread(invitations.send_invitation_email, issued)

    after = await scrape(app_client)
    name = 'cxt_mail_sent_total'
    for result in ('sent', 'failed'):
        moved = value(after, name, kind='invitation', result=result) - value(
            before, name, kind='invitation', result=result
        )
        assert moved == 1, result


@pytest.mark.usefixtures('metrics_on')
async def test_made_up_paths_never_become_labels(app_client: httpx.AsyncClient) -> None:
    for number in range(1000):
        path = secrets.token_urlsafe(6)
        method = 'GET' if number % 3 else secrets.choice(['GET', 'POST', f'X{secrets.token_hex(3).upper()}'])
        target = f'/api/{path}' if number % 2 else f'/api/v1/organization/{path}'
        await app_client.request(method, target)
    samples = await scrape(app_client)
    routes = {dict(labels)['route'] for name, labels in samples if name == 'cxt_http_requests_total'}
    methods = {dict(labels)['method'] for name, labels in samples if name == 'cxt_http_requests_total'}
    assert routes <= {'/api/v1/organization', '/metrics', 'unmatched'}
    assert methods <= {'GET', 'POST', 'other'}
    series = [labels for name, labels in samples if name.startswith('cxt_http_')]
    assert len(series) < 100  # 1,000 different paths and methods, a handful of series
