"""The dashboard's first load against NiceGUI's own floor: a bare page with one label.

Run from the repository root: `uv run bench/dashboard_load.py [rounds]` (Debian's Chromium at /usr/bin/chromium).

Starts `main.py` (signed in once through the setup form) and, as the baseline, a bare NiceGUI app whose `/` shows one
label. Cold load: a fresh browser context (empty cache) holding only the session cookie opens `/` until
`Signed in as` is visible (the bare page: until its label is). Warm load: a reload in the same context. The two apps
are measured alternately, round by round, so both see the same machine. Prints each round's cold
ratio and what the cold load sent (HTTP requests, KiB received until the text showed), then medians and ratios.
Each round also loads the bare page a second time: that ratio, where nothing differs, shows how far a single round
strays on a shared machine. Targets: cold ratio of the medians <= 1.3 and warm dashboard load <= 250 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from playwright.sync_api import Browser, Request, expect, sync_playwright  # noqa: E402

from tests.browser.app_process import AppProcess, free_port  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
EMAIL = 'ada@example.com'
TARGET_COLD_RATIO = 1.3
TARGET_WARM_MS = 250.0

BARE_APP = """
from nicegui import ui

@ui.page('/')
def index():
    ui.label('Bare page')

ui.run(host='127.0.0.1', port={port}, reload=False, show=False, show_welcome_message=False)
"""


def start_bare(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    script = workdir / 'bare_app.py'
    script.write_text(BARE_APP.replace('{port}', str(port)))
    process = subprocess.Popen(
        [sys.executable, str(script)], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError('the bare NiceGUI app did not start')


def signed_in_state(browser: Browser, url: str) -> dict:
    page = browser.new_context(base_url=url).new_page()
    page.goto('/setup')
    page.get_by_label('Organization name').fill('Acme Support')
    page.get_by_label('Your name').fill('Ada Admin')
    page.get_by_label('Email').fill(EMAIL)
    page.get_by_label('Password', exact=True).fill('correct horse battery')
    page.get_by_role('button', name='Create organization').click()
    expect(page.get_by_text(f'Signed in as {EMAIL}')).to_be_visible(timeout=30000)
    state = page.context.storage_state()
    page.context.close()
    return dict(state)


def load_times(browser: Browser, url: str, state: dict | None, visible_text: str) -> tuple[float, float, int, int]:
    """(cold, warm) milliseconds until `visible_text` shows, and the cold load's HTTP requests and bytes received
    (bodies as sent, compressed, plus headers) until then."""
    context = browser.new_context(base_url=url, storage_state=state)  # type: ignore[arg-type]
    page = context.new_page()
    received: list[int] = []

    def finished(request: Request) -> None:
        sizes = request.sizes()
        received.append(sizes['responseBodySize'] + sizes['responseHeadersSize'])

    page.on('requestfinished', finished)
    started = time.perf_counter()
    page.goto('/')
    expect(page.get_by_text(visible_text)).to_be_visible(timeout=30000)
    cold = (time.perf_counter() - started) * 1000
    cold_requests, cold_bytes = len(received), sum(received)
    page.remove_listener('requestfinished', finished)
    started = time.perf_counter()
    page.reload()
    expect(page.get_by_text(visible_text)).to_be_visible(timeout=30000)
    warm = (time.perf_counter() - started) * 1000
    context.close()
    return cold, warm, cold_requests, cold_bytes


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix='cxt-load-'))
    app = AppProcess(ROOT, workdir)
    app.start()
    bare, bare_url = start_bare(workdir)
    app_cold: list[float] = []
    app_warm: list[float] = []
    bare_cold: list[float] = []
    bare_warm: list[float] = []
    bare_again: list[float] = []
    app_traffic: list[tuple[int, int]] = []
    bare_traffic: list[tuple[int, int]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox'])
            state = signed_in_state(browser, app.url)
            load_times(browser, app.url, state, f'Signed in as {EMAIL}')  # one unmeasured load each: imports, caches
            load_times(browser, bare_url, None, 'Bare page')
            for round_number in range(1, ROUNDS + 1):
                cold, warm, requests, size = load_times(browser, app.url, state, f'Signed in as {EMAIL}')
                app_cold.append(cold)
                app_warm.append(warm)
                app_traffic.append((requests, size))
                cold, warm, requests, size = load_times(browser, bare_url, None, 'Bare page')
                bare_cold.append(cold)
                bare_warm.append(warm)
                bare_traffic.append((requests, size))
                # The same bare page once more: how far one round's ratio strays when nothing differs.
                bare_again.append(load_times(browser, bare_url, None, 'Bare page')[0])
                print(
                    f'round {round_number}: cold dashboard {app_cold[-1]:.0f} ms ({app_traffic[-1][0]} requests, '
                    f'{app_traffic[-1][1] / 1024:.0f} KiB), bare {bare_cold[-1]:.0f} ms ({requests} requests, '
                    f'{size / 1024:.0f} KiB), ratio {app_cold[-1] / bare_cold[-1]:.2f}'
                )
            browser.close()
    finally:
        app.stop()
        bare.terminate()
        bare.wait(timeout=10)
    cold_ratio = statistics.median(app_cold) / statistics.median(bare_cold)
    warm_ms = statistics.median(app_warm)
    print(f'{ROUNDS} rounds, medians:')
    print(f'  cold: dashboard {statistics.median(app_cold):.0f} ms, bare {statistics.median(bare_cold):.0f} ms')
    print(f'  warm: dashboard {warm_ms:.0f} ms, bare {statistics.median(bare_warm):.0f} ms')
    warm_ratio = warm_ms / statistics.median(bare_warm)
    print(f'  cold ratio {cold_ratio:.2f} (target <= {TARGET_COLD_RATIO}), warm ratio {warm_ratio:.2f}')
    print(f'  warm dashboard {warm_ms:.0f} ms (target <= {TARGET_WARM_MS:.0f})')
    worst = max(a / b for a, b in zip(app_cold, bare_cold, strict=True))
    noise = [again / bare for again, bare in zip(bare_again, bare_cold, strict=True)]
    print(
        f'  cold ratio in the worst round {worst:.2f}; the bare page against itself, round by round: '
        f'{min(noise):.2f} to {max(noise):.2f} (one round is noise; the target is for the medians)'
    )
    app_requests, app_bytes = (statistics.median(values) for values in zip(*app_traffic, strict=True))
    bare_requests, bare_bytes = (statistics.median(values) for values in zip(*bare_traffic, strict=True))
    print(
        f'  cold load sent: dashboard {app_requests:.0f} requests, {app_bytes / 1024:.0f} KiB; '
        f'bare {bare_requests:.0f} requests, {bare_bytes / 1024:.0f} KiB; '
        f'ratio {app_requests / bare_requests:.2f}x requests, '
        f'{app_bytes / bare_bytes:.2f}x bytes'
    )
    met = cold_ratio <= TARGET_COLD_RATIO and warm_ms <= TARGET_WARM_MS
    print('targets met' if met else 'targets MISSED')
    return 0 if met else 1


if __name__ == '__main__':
    sys.exit(main())
