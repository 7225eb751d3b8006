"""The dashboard's first response is its frame: the tab's cards (and the chart library they need) follow over the
page's socket, so the browser can draw `Signed in as` without waiting for them (bench/dashboard_load.py).

NiceGUI answers a page's request as soon as the page awaits its connection, which the dashboard does once its frame is
built. Without that the first response would carry the whole Dashboard Settings tab and its 366 KiB chart library."""

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, DESKTOP, LATE_SOCKET, sign_in

pytestmark = pytest.mark.browser


def test_the_first_response_is_the_frame_and_the_tab_follows(admin_app: AppProcess, browser: Browser) -> None:
    context = browser.new_context(base_url=admin_app.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page)
    first_response = context.request.get('/').text()
    assert f'Signed in as {ADMIN.email}' in first_response
    assert 'Step 1: Generate API Key' not in first_response
    assert 'echart.js' not in first_response  # the chart's code is asked for only with the chart
    page.goto('/')
    expect(page.get_by_text('Step 1: Generate API Key')).to_be_visible()
    context.close()


def test_until_the_socket_connects_the_tab_says_it_is_loading(admin_app: AppProcess, browser: Browser) -> None:
    context = browser.new_context(base_url=admin_app.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page)
    page.context.add_init_script(LATE_SOCKET)
    page.goto('/')
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()
    loading = page.get_by_role('progressbar', name='Loading Dashboard Settings')
    expect(loading).to_be_visible()
    expect(page.get_by_text('Step 1: Generate API Key')).to_have_count(0)
    page.evaluate('() => window.connectNow()')
    expect(page.get_by_text('Step 1: Generate API Key')).to_be_visible()
    expect(loading).to_have_count(0)
    context.close()
