"""Real browser: time from a completed Hold to Remove to the removed member's open page showing /login.

Run: `uv run bench/hold_to_remove_latency.py [rounds]` (Debian's Chromium at /usr/bin/chromium).
"""

import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser.app_process import AppProcess  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
app = AppProcess(ROOT, Path(tempfile.mkdtemp()))
app.start()
results = []
try:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox'])
        admin = browser.new_context(base_url=app.url).new_page()
        admin.goto('/setup')
        admin.get_by_label('Organization name').fill('Acme Support')
        admin.get_by_label('Your name').fill('Ada Admin')
        admin.get_by_label('Email').fill('ada@example.com')
        admin.get_by_label('Password').fill('correct horse battery')
        admin.get_by_role('button', name='Create organization').click()
        expect(admin.get_by_text('Signed in as ada@example.com')).to_be_visible(timeout=15000)
        admin.get_by_role('tab', name='User Management').click()
        for round_ in range(ROUNDS):
            email = f'member{round_}@example.com'
            admin.get_by_label('Email').fill(email)
            admin.get_by_role('button', name='Send Invite', exact=True).click()
            link = admin.get_by_label('Invitation link').input_value()
            admin.get_by_role('button', name='Close').click()
            member = browser.new_context(base_url=app.url).new_page()
            member.goto(link)
            member.get_by_label('Your name').fill(f'Member {round_}')
            member.get_by_label('Password').fill('member password 1')
            member.get_by_role('button', name='Accept invitation').click()
            expect(member.get_by_text(f'Signed in as {email}')).to_be_visible()
            row = admin.get_by_role('row').filter(has=admin.get_by_text(email, exact=True))
            hold = row.get_by_role('button', name='Hold to Remove', exact=True)
            expect(hold).to_be_visible()
            hold.evaluate("b => b.addEventListener('hold_complete', () => { window.__holdDone = Date.now() })")
            hold.hover()
            admin.mouse.down()
            member.wait_for_url(re.compile(r'/login(\?|$)'), timeout=10000)
            admin.mouse.up()
            expect(member.get_by_role('button', name='Sign in')).to_be_visible()
            done = admin.evaluate('window.__holdDone')
            nav_start, visible = member.evaluate('[performance.timeOrigin, performance.timeOrigin + performance.now()]')
            fcp = member.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
            results.append((nav_start - done, (nav_start + fcp) - done if fcp else visible - done))
            expect(admin.get_by_text(f'{email} removed')).to_be_visible()
            member.context.close()
        browser.close()
finally:
    app.stop()
for start, paint in results:
    print(f'hold complete → /login navigation starts {start:6.0f} ms, login page painted {paint:6.0f} ms')
print(
    f'median: navigation {statistics.median(r[0] for r in results):.0f} ms, '
    f'painted {statistics.median(r[1] for r in results):.0f} ms ({len(results)} rounds)'
)
