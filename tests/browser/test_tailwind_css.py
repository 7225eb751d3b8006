"""Tailwind compiled ahead of time (`ui/tailwind.css`, made by `tests/tailwind_css.py`): it matches the classes in the
sources, and pages are styled by it without NiceGUI's browser build of Tailwind."""

import pytest
from playwright.sync_api import Browser, Request, expect

from tests import tailwind_css
from tests.browser.app_process import AppProcess
from tests.browser.helpers import DESKTOP

pytestmark = pytest.mark.browser


def test_the_compiled_css_matches_the_classes_in_the_sources(browser: Browser) -> None:
    assert tailwind_css.generate(browser) == tailwind_css.OUTPUT.read_text(encoding='utf-8'), (
        'ui/tailwind.css is out of date with the classes in the sources: run `uv run python -m tests.tailwind_css`'
    )


def test_a_page_is_styled_by_tailwind_classes_without_tailwinds_script(app: AppProcess, browser: Browser) -> None:
    context = browser.new_context(base_url=app.url, viewport=DESKTOP)
    page = context.new_page()
    asked: list[str] = []

    def record(request: Request) -> None:
        asked.append(request.url)

    page.on('request', record)
    page.goto('/setup')
    expect(page.get_by_label('Organization name')).to_be_visible()
    assert asked and not [url for url in asked if 'tailwind' in url]
    # The form's card is `w-full max-w-md` (28rem): Tailwind utilities, at work.
    card = page.locator('.q-card').first
    assert card.evaluate('card => getComputedStyle(card).maxWidth') == '448px'
    assert card.evaluate('card => card.getBoundingClientRect().width') == 448
    context.close()
