"""How long does signing in with single sign-on take? The median of N round trips against the test provider.

Run from the repository root: `uv run bench/sso_round_trip.py [rounds]` (default 10).

Starts the tests' OpenID Connect provider (panva's oidc-provider under Node, tests/oidc_provider/) and `main.py`
configured for it, with one organization whose admin's email the provider vouches for. Each round is a new browser
(an httpx client with its own cookies) doing what a person's browser does, timed from the press of `Sign in with …`
until the dashboard's HTML arrives: `/login/oidc/start` -> the provider's authorization endpoint -> its login page ->
the typed login posted -> back to `/login/oidc/callback` (code exchange, ID token checked against the provider's keys)
-> `/session/start` -> `/`. The typing itself is not in it. The baseline, in the same run: loading `/login`, the page
the round trip starts from. Prints both medians and their ratio.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.app_process import AppProcess  # noqa: E402
from tests.oidc_provider import OidcProvider  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
ADMIN = 'ada@example.com'


def seed(data_dir: Path) -> None:
    os.environ['CXT_DATA_DIR'] = str(data_dir)
    from services import config, db
    from services.identity import auth

    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    try:
        with db.write_scope() as session:
            auth.create_first_admin(
                session=session,
                organization_name='Bench Org',
                name='Ada',
                email=ADMIN,
                password_hash=auth.new_password_hash('bench password 123'),
            )
    finally:
        engine.dispose()
    del os.environ['CXT_DATA_DIR']


def round_trip(app: AppProcess, provider: OidcProvider) -> float:
    with httpx.Client(timeout=15) as browser:
        started = time.perf_counter()
        response = browser.get(f'{app.url}/login/oidc/start?next=/')
        assert response.status_code == 302, response.text
        callback = provider.sign_in(response.headers['location'], ADMIN, browser=browser)
        url = callback
        for _ in range(5):
            response = browser.get(url)
            if response.status_code not in (302, 303):
                break
            url = urljoin(url, response.headers['location'])
        elapsed = time.perf_counter() - started
    assert response.status_code == 200 and url.rstrip('/') == app.url, (url, response.status_code)
    assert 'Signed in as' in response.text or 'Dashboard' in response.text
    return elapsed


def main() -> None:
    provider = OidcProvider().start()
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        seed(workdir / 'data')
        app = AppProcess(ROOT, workdir, env=provider.environment()).start()
        try:
            round_trip(app, provider)  # warm-up: discovery and the provider's keys are fetched once per process
            trips = [round_trip(app, provider) for _ in range(ROUNDS)]
            pages = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                assert httpx.get(f'{app.url}/login', timeout=15).status_code == 200
                pages.append(time.perf_counter() - started)
        finally:
            app.stop()
            provider.stop()
    trip, page = statistics.median(trips), statistics.median(pages)
    print(
        f'single sign-on round trip, median of {ROUNDS}: {trip * 1000:.0f} ms '
        f'(min {min(trips) * 1000:.0f}, max {max(trips) * 1000:.0f})'
    )
    print(f'baseline, loading /login, median of {ROUNDS}: {page * 1000:.0f} ms')
    print(f'ratio round trip / page load: {trip / page:.1f}x')


if __name__ == '__main__':
    main()
