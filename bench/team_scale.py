"""User Management with 10 members and with 1,000 members + 200 invitations: render time and server memory per tab.

Run: `uv run bench/team_scale.py [tabs] [rounds]` (Debian's Chromium at /usr/bin/chromium).

For each team size, a fresh data dir is seeded through the services (the organization's admin invites each member
and the member accepts, with one bcrypt hash computed once and reused; the 50-invitations-a-day limit is lifted in
this process only), then the real app runs as its own process and real Chromium (Playwright) measures:

- render: from the click on the `User Management` tab to the last row of the first page of Team Members being
  visible, median of `rounds` fresh page loads (the two apps run side by side and take turns, so a busy moment
  of the machine hits both alike);
- memory per open tab: the app process's resident memory (VmRSS) after `tabs` more dashboard pages each showing User
  Management, minus before, divided by `tabs`.

It prints each figure and the 1,000-member figures as ratios to the 10-member ones, measured in the same run.
Targets (issue 11): render ratio ≤ 1.5, memory per tab ≤ 1 MB at 1,000 members.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from tests.browser.app_process import AppProcess  # noqa: E402

TABS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ADMIN_EMAIL, PASSWORD = 'ada@example.com', 'correct horse battery'


def seed(data_dir: Path, members: int, pending: int) -> None:
    """The admin, `members - 1` teammates (invited and accepted) and `pending` open invitations, via the services."""
    os.environ['CXT_DATA_DIR'] = str(data_dir)
    from services.config import configure, load_settings
    from services.db import init_database, write_scope
    from services.identity import auth, invitations

    settings = load_settings()
    configure(settings)
    init_database(settings.resolved_database_url)
    invitations.DAILY_LIMIT = 10**9  # seeding a year of invitations at once
    hashed = auth.new_password_hash(PASSWORD)
    with write_scope() as db:
        admin = auth.create_first_admin(
            session=db, organization_name='Acme Support', name='Ada Admin', email=ADMIN_EMAIL, password_hash=hashed
        )
        db.expunge(admin)
    for number in range(1, members):
        with write_scope() as db:
            issued = invitations.invite_member(
                session=db, actor=admin, email=f'member{number:04d}@example.com', role='member'
            )
            token = issued.link.rsplit('/', 1)[-1]
            invitations.accept_invitation(session=db, token=token, name=f'Member {number:04d}', password_hash=hashed)
    for number in range(pending):
        with write_scope() as db:
            invitations.invite_member(session=db, actor=admin, email=f'invitee{number:04d}@example.com', role='member')


def rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS')


def sign_in(page: Page) -> None:
    page.goto('/login')
    page.get_by_label('Email').fill(ADMIN_EMAIL)
    page.get_by_label('Password').fill(PASSWORD)
    page.get_by_role('button', name='Sign in').click()
    expect(page.get_by_text(f'Signed in as {ADMIN_EMAIL}')).to_be_visible(timeout=30_000)


def open_team(page: Page, last_row: str) -> float:
    """Click `User Management`; seconds until the last row of the shown page of Team Members is visible."""
    expect(page.get_by_text(f'Signed in as {ADMIN_EMAIL}')).to_be_visible(timeout=30_000)
    tab = page.get_by_role('tab', name='User Management')
    started = time.perf_counter()
    tab.click()
    expect(page.get_by_role('row').filter(has=page.get_by_text(last_row, exact=True))).to_be_visible(timeout=60_000)
    return time.perf_counter() - started


class Scenario:
    """One team size: its own data dir, seeded, and its own app process."""

    def __init__(self, members: int, pending: int) -> None:
        self.members, self.pending = members, pending
        self.app = AppProcess(ROOT, Path(tempfile.mkdtemp(prefix='team-scale-')))
        self.app.data_dir.mkdir(parents=True)
        started = time.perf_counter()
        # Playwright's sync API runs an event loop on this thread, where the services refuse a database session.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(seed, self.app.data_dir, members, pending).result()
        print(f'seeded {members} members + {pending} invitations in {time.perf_counter() - started:.1f} s', flush=True)
        # The first page, in the default order (joined first): the admin and then members 1..24.
        self.last_row = f'member{min(members - 1, 24):04d}@example.com'
        self.app.start()
        self.times: list[float] = []

    def open(self, browser: Browser) -> None:
        self.context = browser.new_context(base_url=self.app.url, viewport={'width': 1280, 'height': 900})
        self.page = self.context.new_page()
        sign_in(self.page)
        open_team(self.page, self.last_row)  # warm-up: imports, caches

    def render_once(self) -> None:
        self.page.goto('/')
        self.times.append(open_team(self.page, self.last_row))

    def memory_per_tab(self) -> float:
        self.page.goto('/help/troubleshooting')  # this page's team tab is no longer open
        time.sleep(1.0)
        pid = self.app._process.pid if self.app._process else 0
        before = rss_mb(pid)
        pages = []
        for _ in range(TABS):
            page = self.context.new_page()
            page.goto('/')
            open_team(page, self.last_row)
            pages.append(page)
        time.sleep(1.0)
        after = rss_mb(pid)
        for page in pages:
            page.close()
        per_tab = (after - before) / TABS
        print(
            f'{self.members} members: render (tab click → last row of the first page visible) median '
            f'{statistics.median(self.times) * 1000:.0f} ms of {len(self.times)}; '
            f'RSS {before:.1f} → {after:.1f} MB over {TABS} tabs: {per_tab:.2f} MB per tab',
            flush=True,
        )
        return per_tab


def main() -> None:
    small, large = Scenario(10, 0), Scenario(1000, 200)
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox', '--headless'])
            try:
                small.open(browser)
                large.open(browser)
                for _ in range(ROUNDS):  # alternating, so a busy moment of the machine hits both alike
                    small.render_once()
                    large.render_once()
                small_memory, large_memory = small.memory_per_tab(), large.memory_per_tab()
            finally:
                browser.close()
    finally:
        for scenario in (small, large):
            scenario.app.stop()
            shutil.rmtree(scenario.app.workdir, ignore_errors=True)
    render_ratio = statistics.median(large.times) / statistics.median(small.times)
    print(
        f'render ratio (1,000 / 10): {render_ratio:.2f}x (target <= 1.5x)\n'
        f'memory per tab: {small_memory:.2f} MB at 10, {large_memory:.2f} MB at 1,000 members '
        f'(ratio {large_memory / small_memory if small_memory > 0 else float("nan"):.2f}x; target <= 1 MB at 1,000)'
    )


if __name__ == '__main__':
    main()
