"""The dashboard on PostgreSQL against SQLite: the cold load of `/` and a sign-in, ratio printed (goal <= 1.3).

Run from the repository root: `uv run bench/pg_dashboard.py [rounds]` (Debian's Chromium at /usr/bin/chromium, and
PostgreSQL's binaries for the throwaway server of tests/postgres_server.py).

Starts `main.py` twice, one on SQLite and one on a fresh PostgreSQL database, each set up through `/setup`. Per
round and app, alternately: a cold load (a fresh browser context holding only the session cookie opens `/` until
`Signed in as` shows) and a sign-in (a fresh context opens `/login`, fills the form, presses `Sign in`, until
`Signed in as` shows; bcrypt at the product's cost on both). Prints the medians and PostgreSQL / SQLite ratios.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))
from playwright.sync_api import Browser, expect, sync_playwright  # noqa: E402

from tests.browser.app_process import AppProcess  # noqa: E402
from tests.postgres_server import PostgresServer, find_bin_dir  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
EMAIL = 'ada@example.com'
PASSWORD = 'correct horse battery'
TARGET = 1.3


def set_up(browser: Browser, url: str) -> dict:
    page = browser.new_context(base_url=url).new_page()
    page.goto('/setup')
    page.get_by_label('Organization name').fill('Acme Support')
    page.get_by_label('Your name').fill('Ada Admin')
    page.get_by_label('Email').fill(EMAIL)
    page.get_by_label('Password', exact=True).fill(PASSWORD)
    page.get_by_role('button', name='Create organization').click()
    expect(page.get_by_text(f'Signed in as {EMAIL}')).to_be_visible(timeout=30000)
    state = page.context.storage_state()
    page.context.close()
    return dict(state)


def cold_load(browser: Browser, url: str, state: dict) -> float:
    context = browser.new_context(base_url=url, storage_state=state)  # type: ignore[arg-type]
    page = context.new_page()
    started = time.perf_counter()
    page.goto('/')
    expect(page.get_by_text(f'Signed in as {EMAIL}')).to_be_visible(timeout=30000)
    took = (time.perf_counter() - started) * 1000
    context.close()
    return took


def sign_in(browser: Browser, url: str) -> float:
    context = browser.new_context(base_url=url)
    page = context.new_page()
    page.goto('/login')
    page.get_by_label('Email').fill(EMAIL)
    page.get_by_label('Password').fill(PASSWORD)
    started = time.perf_counter()
    page.get_by_role('button', name='Sign in').click()
    expect(page.get_by_text(f'Signed in as {EMAIL}')).to_be_visible(timeout=30000)
    took = (time.perf_counter() - started) * 1000
    context.close()
    return took


def main() -> int:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit('PostgreSQL is needed (apt-get install postgresql)')
    server = PostgresServer(bin_dir)
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix='cxt-pg-dash-'))
    apps = {
        'SQLite': AppProcess(ROOT, workdir / 'sqlite'),
        'PostgreSQL': AppProcess(ROOT, workdir / 'pg', env={'CXT_DATABASE_URL': server.create_database()}),
    }
    cold: dict[str, list[float]] = {name: [] for name in apps}
    signin: dict[str, list[float]] = {name: [] for name in apps}
    try:
        for app in apps.values():
            app.workdir.mkdir()
            app.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox'])
            states = {name: set_up(browser, app.url) for name, app in apps.items()}
            for name, app in apps.items():  # one unmeasured round each: imports, caches
                cold_load(browser, app.url, states[name])
                sign_in(browser, app.url)
            for _ in range(ROUNDS):
                for name, app in apps.items():
                    cold[name].append(cold_load(browser, app.url, states[name]))
                    signin[name].append(sign_in(browser, app.url))
            browser.close()
    finally:
        for app in apps.values():
            app.stop()
        server.stop()
    print(f'{ROUNDS} rounds, medians:')
    for name in apps:
        print(
            f'  {name:<10} cold load of / {statistics.median(cold[name]):6.0f} ms, '
            f'sign-in {statistics.median(signin[name]):6.0f} ms'
        )
    cold_ratio = statistics.median(cold['PostgreSQL']) / statistics.median(cold['SQLite'])
    signin_ratio = statistics.median(signin['PostgreSQL']) / statistics.median(signin['SQLite'])
    print(f'  PostgreSQL / SQLite: cold load {cold_ratio:.2f}, sign-in {signin_ratio:.2f} (goal <= {TARGET})')
    return 0 if cold_ratio <= TARGET and signin_ratio <= TARGET else 1


if __name__ == '__main__':
    sys.exit(main())
