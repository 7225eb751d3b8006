"""No secret reaches a log line: API keys, tokens, passwords, TOTP secrets and cookies, fed through every path that
logs, at `debug` (the most talkative level), in both formats; and JSON logs are one JSON object a line.

Two halves: the real app process (`main.py`, CXT_LOG_FORMAT=json) for what the HTTP side logs (the widget API, the
metrics endpoint, the Stripe webhook, pages with a session cookie, start-up, failures), and the pages in-process
(NiceGUI's `user` fixture) for what sign-in, two-factor set-up, key reveal, invitations and password resets log,
with the mail server failing so that the mail paths log too.
"""

import json
import logging
import secrets
import time
from pathlib import Path

import httpx
import pytest
from nicegui import ui
from nicegui.testing import User
from pyotp.totp import TOTP

from services import config, db, logs
from services.db import write_scope
from services.keys import api_keys
from tests.browser.app_process import AppProcess
from tests.factories import make_organization, make_user
from tests.smtp_server import free_port
from tests.ui.helpers import ADMIN_EMAIL, PASSWORD, button, set_up_organization, sign_in

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def secret_value(prefix: str = '') -> str:
    return prefix + secrets.token_urlsafe(24).replace('-', 'x').replace('_', 'y')


def assert_no_secret(lines: str, secrets_fed: dict[str, str]) -> None:
    for what, value in secrets_fed.items():
        assert value not in lines, f'{what} reached a log line'
        if len(value) > 16:  # not even a long fragment of it
            assert value[4:20] not in lines, f'part of {what} reached a log line'


def test_the_running_app_logs_json_lines_without_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics_token = secret_value('metrics-')
    webhook_secret = secret_value('whsec_')
    stripe_key = secret_value('sk_test_')
    smtp_password = secret_value('smtp-')
    app = AppProcess(
        REPO_ROOT,
        tmp_path,
        env={
            'CXT_LOG_FORMAT': 'json',
            'CXT_LOG_LEVEL': 'debug',
            'CXT_METRICS_TOKEN': metrics_token,
            'CXT_STRIPE_WEBHOOK_SECRET': webhook_secret,
            'CXT_STRIPE_SECRET_KEY': stripe_key,
            'CXT_SMTP_HOST': '127.0.0.1',
            'CXT_SMTP_PORT': str(free_port()),
            'CXT_SMTP_USER': 'dashboard',
            'CXT_SMTP_PASSWORD': smtp_password,
        },
    )
    # The organization and its key, made in the app's own data dir before it starts.
    monkeypatch.setenv('CXT_DATA_DIR', str(app.data_dir))
    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    with write_scope() as session:
        admin = make_user(session, organization=make_organization(session))
        key = api_keys.generate_key(session=session, actor=admin)
    engine.dispose()
    wrong_key = 'cxt_' + secrets.token_hex(20)
    cookie = secret_value('cookie-')
    reset_token = secret_value()

    app.start()
    try:
        with httpx.Client(base_url=app.url, timeout=10) as client:
            answered = [
                client.get('/api/v1/organization', headers={'Authorization': f'Bearer {key}'}),
                client.get('/api/v1/organization', headers={'X-API-Key': key}),
                client.get('/api/v1/organization', headers={'Authorization': f'Bearer {wrong_key}'}),
                client.get('/metrics', headers={'Authorization': f'Bearer {metrics_token}'}),
                client.get('/metrics', headers={'Authorization': f'Bearer {metrics_token}x'}),
                client.post(
                    '/api/stripe/webhook',
                    content=json.dumps({'id': 'evt_1', 'secret': webhook_secret}),
                    headers={'Stripe-Signature': f't={int(time.time())},v1={stripe_key}'},
                ),
                client.get('/login', headers={'Cookie': f'session={cookie}; other={cookie}'}),
                client.get(f'/reset-password/{reset_token}'),
                client.get(f'/invite/{reset_token}'),
                client.get(f'/api/{reset_token}', headers={'X-Request-ID': 'proxy-given.id-1'}),
            ]
    finally:
        app.stop()
    assert [response.status_code for response in answered[:6]] == [200, 200, 401, 200, 401, 400]
    assert answered[-1].headers['x-request-id'] == 'proxy-given.id-1'  # a proxy's own id is kept
    ids = [response.headers['x-request-id'] for response in answered]
    assert len(set(ids)) == len(ids), 'every response has its own request id'

    output = app.log_path.read_text()
    entries = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert all({'time', 'level', 'logger', 'message'} <= entry.keys() for entry in entries)
    by_id = {entry['request_id']: entry for entry in entries if entry.get('status') is not None}
    for response, request_id in zip(answered, ids, strict=True):
        entry = by_id[request_id]  # the request's line carries the id the client got back
        assert entry['status'] == response.status_code and entry['duration_ms'] >= 0
        assert entry['route'] and entry['method'] in {'GET', 'POST'}
    assert by_id[ids[0]]['route'] == '/api/v1/organization'
    assert by_id[ids[8]]['route'] == '/invite/{token}'  # the template, never the raw path
    assert_no_secret(
        output,
        {
            'the API key': key,
            'a wrong API key': wrong_key,
            'the metrics token': metrics_token,
            'the webhook secret': webhook_secret,
            'the Stripe key': stripe_key,
            'the SMTP password': smtp_password,
            'a session cookie': cookie,
            'a reset token in a path': reset_token,
        },
    )


@pytest.fixture
def failing_mail(monkeypatch: pytest.MonkeyPatch) -> str:
    """A mail server with a login that refuses connections: every mail path logs its failure."""
    password = secret_value('smtp-')
    monkeypatch.setenv('CXT_SMTP_HOST', '127.0.0.1')
    monkeypatch.setenv('CXT_SMTP_PORT', str(free_port()))
    monkeypatch.setenv('CXT_SMTP_SECURITY', 'none')
    monkeypatch.setenv('CXT_SMTP_TIMEOUT', '1')
    monkeypatch.setenv('CXT_SMTP_USER', 'dashboard')
    monkeypatch.setenv('CXT_SMTP_PASSWORD', password)
    return password


async def test_sign_in_two_factor_keys_and_mail_log_no_secret(
    failing_mail: str, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await set_up_organization(user)
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    key = _shown_key(user)

    await user.open('/security')
    await user.should_see('Set up authenticator app')
    button(user, 'Set up authenticator app').click()
    await user.should_see('Scan the QR code')
    (shown,) = user.find(marker='totp-secret').elements
    totp_secret = shown.text.replace(' ', '')  # type: ignore[attr-defined]
    user.find(kind=ui.input, marker='code').type('000000' if TOTP(totp_secret).now() != '000000' else '111111')
    button(user, 'Confirm').click()
    await user.should_see('Wrong code')

    wrong_password = secret_value('wrong-')
    button(user, 'Sign out').click()
    await user.should_see('Forgot password?')
    await sign_in(user, ADMIN_EMAIL, wrong_password)
    await user.should_see('Invalid email or password')
    await sign_in(user, ADMIN_EMAIL)
    await user.should_see(f'Signed in as {ADMIN_EMAIL}')

    user.find('User Management').click()
    await user.should_see(marker='invite-email')
    user.find(marker='invite-email').type('new.person@example.com')
    user.find('Send Invite').click()
    await user.should_see('Email failed', retries=100)  # the mail path ran, and failed

    await user.open('/forgot-password')
    user.find('Email').type(ADMIN_EMAIL)
    user.find('Send reset link').click()
    await user.should_see('reset', retries=50)

    lines = '\n'.join(
        formatter.format(record)
        for record in caplog.records
        for formatter in (logs.JsonFormatter(), logs.TextFormatter())
    )
    assert 'mail' in lines.lower(), 'the failing mail server was logged (the mail paths ran)'
    assert_no_secret(
        lines,
        {
            'the password': PASSWORD,
            'a wrong password': wrong_password,
            'the SMTP password': failing_mail,
            'the TOTP secret': totp_secret,
            'the API key': key,
        },
    )


def _shown_key(user: User) -> str:
    for element in user.find(kind=ui.input).elements:
        value = str(getattr(element, 'value', '') or '')
        if value.startswith('cxt_') and '•' not in value:
            return value
    raise AssertionError('the new key is shown right after generating it')
