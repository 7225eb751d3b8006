"""DNS rebinding: a page on the attacker's name (`http://rebind.attacker.example:<port>`), whose name then resolves to
127.0.0.1, is same-origin with a dashboard listening there, reads its pages and drives its socket. On main it could
claim `/setup` of a fresh instance. The app now answers only the names it expects: `CXT_PUBLIC_URL`'s host, loopback
names and addresses (an address cannot be rebound), never another name."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.app_process import AppProcess
from tests.browser.helpers import REPO_ROOT

REBOUND = 'rebind.attacker.example'


@pytest.fixture(scope='module')
def fresh_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """A new instance on loopback without CXT_PUBLIC_URL: `/setup` is open to whoever reaches it first."""
    app = AppProcess(REPO_ROOT, tmp_path_factory.mktemp('fresh')).start()
    yield app
    app.stop()


def get(app: AppProcess, path: str, host: str, **headers: str) -> httpx.Response:
    return httpx.get(f'{app.url}{path}', headers={'Host': host, **headers}, timeout=10)


def test_a_rebound_name_cannot_reach_setup_or_the_socket(fresh_app: AppProcess) -> None:
    port = fresh_app.port
    setup = get(fresh_app, '/setup', f'{REBOUND}:{port}')
    assert setup.status_code == 400
    assert 'Create organization' not in setup.text
    polling = get(
        fresh_app,
        '/_nicegui_ws/socket.io/?EIO=4&transport=polling',
        f'{REBOUND}:{port}',
        Origin=f'http://{REBOUND}:{port}',
    )
    assert polling.status_code == 400
    assert not polling.text.startswith('0{')  # no engine.io session was opened


def test_loopback_names_and_addresses_still_work(fresh_app: AppProcess) -> None:
    port = fresh_app.port
    for host in (f'127.0.0.1:{port}', f'localhost:{port}', f'LOCALHOST:{port}', '127.0.0.1'):
        response = get(fresh_app, '/setup', host)
        assert response.status_code == 200, host
        assert 'Create organization' in response.text


def test_with_a_public_url_its_host_and_the_widget_api_work(tmp_path: Path) -> None:
    app = AppProcess(REPO_ROOT, tmp_path, env={'CXT_PUBLIC_URL': 'https://dashboard.example.com'}).start()
    try:
        assert get(app, '/setup', 'dashboard.example.com').status_code == 200
        assert get(app, '/api/health', 'dashboard.example.com').status_code == 200
        widget = get(app, '/api/v1/organization', 'dashboard.example.com', Authorization='Bearer cxt_unknown')
        assert widget.status_code == 401  # the API itself answered
        assert get(app, '/api/health', f'127.0.0.1:{app.port}').status_code == 200  # the machine's own health check
        assert get(app, '/setup', 'other.example.com').status_code == 400
        assert get(app, '/api/v1/organization', REBOUND).status_code == 400
    finally:
        app.stop()
