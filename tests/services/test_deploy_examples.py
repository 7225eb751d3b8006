"""The deployment examples in deploy/ (and README's Deploying section) say only what is true: the variables they set
are ones the app reads, and the proxies route as the README says: a browser stays on one process for the UI (its
pages live in that process's memory), while /api/ requests take turns. The proxies run for real in front of two
small upstream servers that answer with their own name."""

import http.server
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.config import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / 'deploy'
EXAMPLE_PORTS = ('8081', '8082')  # the two processes in the proxy examples
BROWSERS = 20


def deploying_section() -> str:
    readme = (REPO / 'README.md').read_text()
    return readme.split('## Deploying', 1)[1].split('\n## ', 1)[0]


def test_the_examples_set_only_variables_the_app_reads() -> None:
    known = {f'CXT_{name.upper()}' for name in Settings.model_fields}
    texts = {path.name: path.read_text() for path in sorted(DEPLOY.iterdir())} | {'README': deploying_section()}
    used = {name: set(re.findall(r'\bCXT_[A-Z_]+\b', text)) for name, text in texts.items()}
    assert {name: sorted(variables - known) for name, variables in used.items() if variables - known} == {}
    # What the units and the README rely on is there: the data directory, the shared database and secret.
    assert {'CXT_DATA_DIR', 'CXT_PORT'} <= used['cxt@.service']
    assert {'CXT_DATABASE_URL', 'CXT_SECRET_KEY', 'CXT_PUBLIC_URL'} <= used['README']


def test_the_examples_name_the_files_and_routes_the_app_has() -> None:
    caddy, nginx = (DEPLOY / 'Caddyfile').read_text(), (DEPLOY / 'nginx.conf').read_text()
    assert 'health_uri /api/ready' in caddy
    assert 'location /api/' in nginx and 'handle /api/*' in caddy
    for port in EXAMPLE_PORTS:
        assert f'127.0.0.1:{port}' in caddy and f'127.0.0.1:{port}' in nginx
    assert 'ExecStart=/opt/cxt/.venv/bin/python main.py' in (DEPLOY / 'cxt.service').read_text()


# ---------------------------------------------------------------------------------------------------------------
# The proxies, run for real


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Upstream:
    """An HTTP server on 127.0.0.1 that answers every request with its name and remembers the requests' headers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[dict[str, str]] = []
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.seen.append({key.lower(): value for key, value in self.headers.items()})
                body = upstream.name.encode()
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    pair = (Upstream('one'), Upstream('two'))
    yield pair
    for upstream in pair:
        upstream.stop()


def with_upstreams(config: str, upstreams: tuple[Upstream, Upstream]) -> str:
    for example, upstream in zip(EXAMPLE_PORTS, upstreams, strict=True):
        config = config.replace(f'127.0.0.1:{example}', f'127.0.0.1:{upstream.port}')
    return config


def run_until_answering(command: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open('wb') as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f'{command[0]} exited with {process.returncode}:\n{log.read_text()}')
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f'{command[0]} did not listen on {port}:\n{log.read_text()}')


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def route_cookie(response: httpx.Response) -> str | None:
    """The value of the `cxt_route` cookie the proxy set, if it set one (read from the header: it may be Secure)."""
    for header in response.headers.get_list('set-cookie'):
        if match := re.match(r'\s*cxt_route=([^;]+)', header):
            return match.group(1)
    return None


def check_routing(base: str, upstreams: tuple[Upstream, Upstream]) -> None:
    """Sticky UI per browser, by the proxy's cookie; round-robin for /api/; the page socket's upgrade passed on."""
    first_choices = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(BROWSERS):
            first = client.get('/', headers={'Cookie': ''})  # a new browser: no cookie yet
            cookie = route_cookie(first)
            assert first.status_code == 200 and cookie, first.headers
            first_choices.append(first.text)
            for path in ('/login', '/_nicegui_ws/socket.io/?EIO=4&transport=polling', '/', '/security'):
                later = client.get(path, headers={'Cookie': f'cxt_route={cookie}'})
                assert later.text == first.text, f'{path} went to another process than the page'
                assert route_cookie(later) in (None, cookie), 'the browser is not moved'
        assert set(first_choices) == {'one', 'two'}, 'new browsers are spread over both processes'

        api = [client.get('/api/v1/organization', headers={'Cookie': ''}).text for _ in range(10)]
        assert sorted(api) == ['one'] * 5 + ['two'] * 5, api
        assert all(route_cookie(client.get('/api/health')) is None for _ in range(2)), 'no cookie needed for /api/'

        upgrade = {'Connection': 'Upgrade', 'Upgrade': 'websocket', 'Cookie': f'cxt_route={cookie}'}
        client.get('/_nicegui_ws/socket.io/?EIO=4&transport=websocket', headers=upgrade)
    socket_requests = [seen for upstream in upstreams for seen in upstream.seen if seen.get('upgrade') == 'websocket']
    assert socket_requests, 'the Upgrade header reaches the process'
    assert socket_requests[-1]['connection'].lower() == 'upgrade'
    assert socket_requests[-1]['x-forwarded-for'] == '127.0.0.1'


def test_nginx_pins_each_browser_to_one_process_and_spreads_the_api(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    nginx = shutil.which('nginx') or shutil.which('nginx', path='/usr/sbin')
    if nginx is None:
        pytest.skip('nginx is not installed (.ci/run installs nginx-light)')
    port = free_port()
    config = with_upstreams((DEPLOY / 'nginx.conf').read_text(), upstreams)
    # Plain HTTP on loopback ports for the test; the example's certificates are not here.
    config = config.replace('listen 443 ssl;', f'listen 127.0.0.1:{port};')
    config = config.replace('listen 80;', f'listen 127.0.0.1:{free_port()};')
    config = re.sub(r'^\s*ssl_certificate.*\n', '', config, flags=re.MULTILINE)
    (tmp_path / 'cxt.conf').write_text(config)
    (tmp_path / 'nginx.conf').write_text(
        f'pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n'
        f'http {{\n  access_log off;\n'
        + ''.join(
            f'  {kind}_temp_path {tmp_path}/{kind};\n' for kind in ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi')
        )
        + f'  include {tmp_path}/cxt.conf;\n}}\n'
    )
    command = [nginx, '-p', str(tmp_path), '-c', str(tmp_path / 'nginx.conf'), '-g', 'daemon off;']
    process = run_until_answering(command, port, tmp_path / 'nginx.log')
    try:
        check_routing(f'http://127.0.0.1:{port}', upstreams)
    finally:
        stop(process)


def test_caddy_pins_each_browser_to_one_process_and_spreads_the_api(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    caddy = shutil.which('caddy')
    if caddy is None:
        pytest.skip('Caddy is not installed (.ci/run installs caddy)')
    port = free_port()
    config = with_upstreams((DEPLOY / 'Caddyfile').read_text(), upstreams)
    config = config.replace('dashboard.example.com {', f'http://127.0.0.1:{port} {{')
    # No admin endpoint, no certificates: this Caddy serves plain HTTP on loopback for the test only.
    (tmp_path / 'Caddyfile').write_text('{\n\tadmin off\n\tauto_https off\n}\n\n' + config)
    environment = {'HOME': str(tmp_path), 'XDG_DATA_HOME': str(tmp_path / 'data'), 'XDG_CONFIG_HOME': str(tmp_path)}
    command = ['env', *(f'{key}={value}' for key, value in environment.items()), caddy, 'run']
    command += ['--config', str(tmp_path / 'Caddyfile'), '--adapter', 'caddyfile']
    process = run_until_answering(command, port, tmp_path / 'caddy.log')
    try:
        check_routing(f'http://127.0.0.1:{port}', upstreams)
    finally:
        stop(process)
