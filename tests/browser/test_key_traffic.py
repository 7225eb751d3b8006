"""The key's traffic in a real browser: requests made over HTTP to the app process show up in the chart card."""

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ARTIFACTS, KEY, api_key_field, button, sign_in

pytestmark = pytest.mark.browser


def test_requests_made_over_http_show_in_the_chart(
    admin_app: AppProcess, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(admin_app).new_page()
    sign_in(page)
    button(page, 'Generate API Key').click()
    expect(api_key_field(page)).to_have_value(KEY)
    key = api_key_field(page).input_value()
    endpoint = f'{admin_app.url}/api/v1/organization'
    assert {httpx.get(endpoint, headers={'X-API-Key': key}).status_code for _ in range(3)} == {200}
    assert httpx.get(endpoint, headers={'X-API-Key': 'cxt_' + 'x' * 40}).status_code == 401

    page.reload()
    card = page.locator('.q-card').filter(has=page.get_by_role('heading', name="The key's traffic", level=2))
    expect(card).to_be_visible()
    expect(card.get_by_text('Last 7 days, by hour: current key')).to_contain_text('3 accepted, 0 refused')
    expect(card.locator('canvas').first).to_be_visible()  # ECharts drew it
    card.get_by_role('button', name='Last 30 days, by day').click()
    expect(card.get_by_text('Last 30 days, by day: current key')).to_contain_text('3 accepted, 0 refused')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=ARTIFACTS / 'key-traffic-chart.png')
