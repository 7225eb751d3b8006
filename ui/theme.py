"""The look: the shared frame every page sits in, its colours and its CSS."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nicegui import app, ui

from models import Organization, Role, User
from services.version import PRODUCT_NAME
from ui import actions, nicegui_compat, open_pages
from ui.components import connection_banner, times
from ui.components.dialogs import Heading as Heading
from ui.components.dialogs import dialog_card as dialog_card
from ui.components.dialogs import heading as heading

APP_NAME = PRODUCT_NAME

# Colours with at least 4.5:1 against white and the page's grey: Quasar's own green (2.6:1) and cyan fail it.
COLORS = {
    'primary': '#1f4fd1',  # 6.8:1 on white, 5.8:1 on the page's grey
    'positive': '#166534',  # notifications and the `Sent` status
    'info': '#0b6e99',
    'warning': '#f2c037',  # used with dark text (Quasar does so for its warning notifications)
}
FOCUS_RING = '#1f4fd1'

_CSS = """
/* NiceGUI pads every tab panel; one that asks for no padding gets none, so its cards line up with the tabs. */
.nicegui-tab-panel.q-pa-none { padding: 0; }
@media (max-width: 599.98px) {
  /* Phones: the dashboard's three tabs fit side by side, without scroll arrows hiding the last one. */
  .q-tabs .q-tab { padding: 0 8px; min-width: 0; }
  .q-tabs .q-tab__icon { display: none; }
}
/* Links: the primary blue (6.8:1 on white) instead of the lighter blue-500 (3.7:1); they stay underlined. */
a.nicegui-link, a.nicegui-link:visited { color: var(--q-primary); }
/* A visible focus ring on every control a keyboard reaches: 2 px of the primary blue (at least 5.8:1 on white and
   grey) with a white gap, so it shows on coloured buttons too. Quasar removes outlines with `!important` rules in its
   `quasar_importants` layer; an `!important` rule in the first layer (`theme`) is the one that wins over those. */
@layer theme {
  :focus-visible, .q-btn:focus-visible, .q-item:focus-visible, .q-radio:focus-visible, .q-checkbox:focus-visible,
  .q-toggle:focus-visible {
    outline: 2px solid FOCUS_RING !important; outline-offset: 2px !important; box-shadow: 0 0 0 2px #fff !important; }
  /* Tabs sit in a strip that clips what sticks out: their ring goes just inside. */
  .q-tab:focus-visible { outline: 2px solid FOCUS_RING !important; outline-offset: -3px !important; }
  /* A text field shows its ring around the whole field (below), not around the bare text inside it. */
  .q-field__native:focus-visible, .q-field__input:focus-visible, .q-select__focus-target:focus-visible {
    outline: none !important; box-shadow: none !important; }
  /* On a coloured notification the ring is white. */
  .q-notification :focus-visible { outline-color: #fff !important; box-shadow: 0 0 0 2px #000 !important; }
}
.q-field--focused .q-field__control,
.q-field__control:has(.q-field__native:focus, .q-field__input:focus, .q-select__focus-target:focus) {
  outline: 2px solid FOCUS_RING; outline-offset: 2px; }
.q-radio:focus-visible, .q-checkbox:focus-visible, .q-toggle:focus-visible { border-radius: 4px; }
/* The dialog's backdrop is painted below its card by z-index -1, which axe-core reads as covering the card (it then
   measures every text in a dialog against the grey backdrop, axe-core issue #3464): same picture, plain order. */
.q-dialog__backdrop { z-index: 0; }
.q-dialog__inner { z-index: 1; }
/* Headings keep the look of the labels they replaced (the browser's defaults would change sizes and margins). */
h1.cxt-heading, h2.cxt-heading, h3.cxt-heading, h4.cxt-heading { margin: 0; }
/* A time shows how long ago (or until); the exact time on hover (its title) and, for keyboards, on focus. */
time.cxt-time { text-decoration: underline dotted; text-underline-offset: 3px; cursor: help; }
time.cxt-time:focus::after { content: ' (' attr(title) ')'; }
""".replace('FOCUS_RING', FOCUS_RING)


# Quasar's loading bar (shown while a page's request runs) is a progressbar: it needs a name (axe
# `aria-progressbar-name`). Attributes given to the plugin reach its element.
app.config.quasar_config.setdefault('loadingBar', {})['aria-label'] = 'Loading'


# A select's open menu is a listbox whose options sit in Quasar's virtual-scroll wrapper; the wrapper's tabindex makes
# it a focusable non-option inside the listbox (axe `aria-required-children`). Nothing focuses it: drop the tabindex.
_SCRIPT = """
<script>
new MutationObserver(() => {
  for (const wrapper of document.querySelectorAll('[role=listbox] > .q-virtual-scroll__content[tabindex]')) {
    wrapper.removeAttribute('tabindex');
  }
}).observe(document.documentElement, { childList: true, subtree: true });
</script>
"""


_FONT_PRELOADS = nicegui_compat.font_preload_links()

ui.add_head_html(nicegui_compat.ORDERED_EVENTS_SCRIPT, shared=True)  # what is done before the socket connects

# Tailwind's CSS, compiled ahead of time from the classes in the sources (`tests/tailwind_css.py`). NiceGUI's browser
# build of Tailwind, which would compile it again in every browser on every first load, is off (main.py).
TAILWIND_CSS = (Path(__file__).parent / 'tailwind.css').read_text(encoding='utf-8')
ui.add_head_html(f'<style>{TAILWIND_CSS}</style>', shared=True)


def apply_page_style(title: str) -> None:
    ui.page_title(f'{title} · {APP_NAME}')
    ui.colors(**COLORS)
    ui.query('body').classes('bg-grey-2')
    ui.add_css(_CSS)
    ui.add_head_html(_FONT_PRELOADS)  # asked for at once, not after the first render
    ui.add_head_html(_SCRIPT)
    ui.add_head_html(times.ZONE_SCRIPT)  # the reader's time zone, for the times the next pages show
    ui.add_css(connection_banner.CSS)
    connection_banner.ConnectionBanner().mark('connection-banner')  # `Connection lost` while the server is away


@contextmanager
def frame(title: str, *, user: User | None = None, organization: Organization | None = None) -> Iterator[None]:
    """Header (who is signed in, the organization, Sign out) and a centred content column. A page with a signed-in
    `user` is tracked, so removal, `Sign out everywhere` and the end of the session reach it at once."""
    if user is not None:
        open_pages.track_page(user)
    apply_page_style(title)
    with ui.header().classes('bg-white text-grey-9 shadow-1 q-px-md q-py-sm items-center gap-2 flex-wrap'):
        ui.link(APP_NAME, '/').classes('text-lg font-bold no-underline text-primary')
        if organization is not None:
            ui.label(organization.name).classes('text-grey-8').mark('organization-name')
        ui.space()
        if user is not None:
            ui.label(f'Signed in as {user.email}').classes('text-sm text-grey-8')
            ui.link('Security', '/security').classes('text-sm')
            if user.role == Role.ADMIN:  # the organization's own settings (ui/pages/organization.py)
                ui.link('Organization', '/organization').classes('text-sm')
            ui.button('Sign out', on_click=actions.sign_out).props('flat no-caps dense')
    # No extra padding on phones: NiceGUI's page already has 16 px, and every pixel of a 390 px screen counts.
    with ui.column().classes('w-full max-w-5xl mx-auto p-0 sm:p-4 gap-4'):
        heading(title, level=1).mark('page-title')
        yield


@contextmanager
def narrow_card(title: str, subtitle: str | None = None) -> Iterator[None]:
    """A centred card for sign-in style pages."""
    apply_page_style(title)
    with ui.column().classes('w-full items-center q-pa-md'):
        ui.label(APP_NAME).classes('text-xl font-bold text-primary q-mt-lg')
        with ui.card().classes('w-full max-w-md q-pa-lg gap-3'):
            heading(title, level=1).classes(remove='text-h5', add='text-h6').mark('page-title')
            if subtitle:
                ui.label(subtitle).classes('text-sm text-grey-8')
            yield
