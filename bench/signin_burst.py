"""Does a burst of sign-ins starve the event loop? `/api/health` latency while 8 people sign in at once.

Run from the repository root: `uv run bench/signin_burst.py [rounds]` (Debian's Chromium at /usr/bin/chromium).

Seeds an organization with 8 accounts through the services (bcrypt at the product's cost, 12), starts `main.py` and,
as the control, a bare FastAPI app with one `/ping` route. Each round, 8 real browsers press `Sign in` together while
both servers are polled every 20 ms; the round ends when all 8 dashboards show. Prints p50/p99 of both, per round
and over all rounds. Target: the app's p99 during the burst <= 250 ms (a loop blocked by bcrypt gives ~2,000 ms).
The control tells how much of the figure is the machine itself (2 shared cores are busy with the 8 browsers too).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.browser.app_process import AppProcess, free_port  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
PEOPLE = 8
PASSWORD = 'burst password 123'
TARGET_P99_MS = 250.0


def seed(data_dir: Path) -> list[str]:
    """One admin and seven members, each with a real cost-12 hash; returns their addresses."""
    os.environ['CXT_DATA_DIR'] = str(data_dir)
    from services import config, db
    from services.identity import auth, invitations

    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    password_hash = auth.new_password_hash(PASSWORD)
    emails = [f'person{n}@example.com' for n in range(PEOPLE)]
    try:
        with db.write_scope() as session:
            admin = auth.create_first_admin(
                session=session,
                organization_name='Burst Org',
                name='Person 0',
                email=emails[0],
                password_hash=password_hash,
            )
            for n, email in enumerate(emails[1:], start=1):
                issued = invitations.invite_member(session=session, actor=admin, email=email, role='member')
                token = issued.link.rstrip('/').rsplit('/', 1)[-1]
                invitations.accept_invitation(
                    session=session, token=token, name=f'Person {n}', password_hash=password_hash
                )
    finally:
        engine.dispose()
    del os.environ['CXT_DATA_DIR']
    return emails


def serve_bare(port: int) -> subprocess.Popen[bytes]:
    code = (
        'import uvicorn\nfrom fastapi import FastAPI\napp = FastAPI()\n'
        "@app.get('/ping')\nasync def ping():\n    return {'ping': 'pong'}\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', access_log=False)\n"
    )
    process = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f'http://127.0.0.1:{port}/ping', timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError('the bare app did not start')


class Poller(threading.Thread):
    """GET `url` every 20 ms and keep each answer's latency in ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                started = time.perf_counter()
                client.get(self.url)
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.stopping.wait(max(0.0, 0.02 - (time.perf_counter() - started)))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix='cxt-burst-'))
    emails = seed(workdir / 'data')
    app = AppProcess(ROOT, workdir)
    app.start()
    bare_port = free_port()
    bare = serve_bare(bare_port)
    app_all: list[float] = []
    bare_all: list[float] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox'])
            for round_ in range(1, ROUNDS + 1):
                pages: list[Page] = []
                for email in emails:
                    page = browser.new_context(base_url=app.url).new_page()
                    page.goto('/login')
                    page.get_by_label('Email').fill(email)
                    page.get_by_label('Password', exact=True).fill(PASSWORD)
                    pages.append(page)
                app_poll, bare_poll = Poller(f'{app.url}/api/health'), Poller(f'http://127.0.0.1:{bare_port}/ping')
                app_poll.start()
                bare_poll.start()
                time.sleep(0.5)  # a quiet baseline inside the same window
                started = time.perf_counter()
                for page in pages:  # as close to "at once" as one driver gets: no waiting between the clicks
                    page.get_by_role('button', name='Sign in').dispatch_event('click')
                for page, email in zip(pages, emails, strict=True):
                    expect(page.get_by_text(f'Signed in as {email}')).to_be_visible(timeout=60000)
                burst = time.perf_counter() - started
                app_poll.stopping.set()
                bare_poll.stopping.set()
                app_poll.join()
                bare_poll.join()
                for page in pages:
                    page.context.close()
                app_all += app_poll.latencies
                bare_all += bare_poll.latencies
                print(
                    f'round {round_}: 8 sign-ins in {burst:.1f} s; /api/health p50 '
                    f'{statistics.median(app_poll.latencies):.1f} ms p99 {percentile(app_poll.latencies, 0.99):.1f} ms'
                    f' | bare /ping p50 {statistics.median(bare_poll.latencies):.1f} ms'
                    f' p99 {percentile(bare_poll.latencies, 0.99):.1f} ms',
                    flush=True,
                )
            browser.close()
    finally:
        app.stop()
        bare.terminate()
        bare.wait(timeout=10)
    app_p99, bare_p99 = percentile(app_all, 0.99), percentile(bare_all, 0.99)
    print(
        f'all rounds: app /api/health p99 {app_p99:.1f} ms, bare /ping p99 {bare_p99:.1f} ms,'
        f' ratio {app_p99 / bare_p99:.2f}'
    )
    print(f'target: app p99 <= {TARGET_P99_MS:.0f} ms -> {"met" if app_p99 <= TARGET_P99_MS else "MISSED"}')
    return 0 if app_p99 <= TARGET_P99_MS else 1


if __name__ == '__main__':
    sys.exit(main())
