"""The look: the shared frame every page sits in, its colours and its CSS."""

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui
from nicegui.elements.mixins.text_element import TextElement

from models import Organization, User
from ui import actions

APP_NAME = 'CX Toolbox Dashboard'

_CSS = """
/* NiceGUI pads every tab panel; one that asks for no padding gets none, so its cards line up with the tabs. */
.nicegui-tab-panel.q-pa-none { padding: 0; }
@media (max-width: 599.98px) {
  /* Phones: the dashboard's three tabs fit side by side, without scroll arrows hiding the last one. */
  .q-tabs .q-tab { padding: 0 8px; min-width: 0; }
  .q-tabs .q-tab__icon { display: none; }
}
"""


def apply_page_style(title: str) -> None:
    ui.page_title(f'{title} · {APP_NAME}')
    ui.colors(primary='#1f4fd1')
    ui.query('body').classes('bg-grey-2')
    ui.add_css(_CSS)


@contextmanager
def frame(title: str, *, user: User | None = None, organization: Organization | None = None) -> Iterator[None]:
    """Header (who is signed in, the organization, Sign out) and a centred content column."""
    apply_page_style(title)
    with ui.header().classes('bg-white text-grey-9 shadow-1 q-px-md q-py-sm items-center gap-2 flex-wrap'):
        ui.link(APP_NAME, '/').classes('text-lg font-bold no-underline text-primary')
        if organization is not None:
            ui.label(organization.name).classes('text-grey-8').mark('organization-name')
        ui.space()
        if user is not None:
            ui.label(f'Signed in as {user.email}').classes('text-sm text-grey-8')
            ui.link('Security', '/security').classes('text-sm')
            ui.button('Sign out', on_click=_sign_out).props('flat no-caps dense')
    # No extra padding on phones: NiceGUI's page already has 16 px, and every pixel of a 390 px screen counts.
    with ui.column().classes('w-full max-w-5xl mx-auto p-0 sm:p-4 gap-4'):
        yield


@contextmanager
def narrow_card(title: str, subtitle: str | None = None) -> Iterator[None]:
    """A centred card for sign-in style pages."""
    apply_page_style(title)
    with ui.column().classes('w-full items-center q-pa-md'):
        ui.label(APP_NAME).classes('text-xl font-bold text-primary q-mt-lg')
        with ui.card().classes('w-full max-w-md q-pa-lg gap-3'):
            ui.label(title).classes('text-h6')
            if subtitle:
                ui.label(subtitle).classes('text-sm text-grey-8')
            yield


class Heading(TextElement):
    """A real heading element (`h1`…`h4`) styled like the rest, so screen readers can jump between sections."""

    def __init__(self, text: str, *, level: int = 2) -> None:
        super().__init__(tag=f'h{level}', text=text)
        self.classes({1: 'text-h5', 2: 'text-h6', 3: 'text-subtitle1 text-weight-medium'}.get(level, 'text-subtitle2'))
        self.classes('q-my-none')


def heading(text: str, *, level: int = 2) -> Heading:
    """`h1` once per page (the frame's title), `h2` for each card, `h3` inside a card."""
    return Heading(text, level=level)


async def _sign_out() -> None:
    await actions.sign_out()
