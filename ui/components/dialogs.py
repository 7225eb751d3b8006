"""Headings and the dialog named by its title: the look's building blocks that `ui/actions.py` needs too (`theme`
re-exports them, and `theme` imports `actions` for the frame's `Sign out`, so they live here)."""

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui
from nicegui.elements.mixins.text_element import TextElement


class Heading(TextElement):
    """A real heading element (`h1`…`h4`) styled like the rest, so screen readers can jump between sections."""

    def __init__(self, text: str, *, level: int = 2) -> None:
        super().__init__(tag=f'h{level}', text=text)
        self.classes({1: 'text-h5', 2: 'text-h6', 3: 'text-subtitle1 text-weight-medium'}.get(level, 'text-subtitle2'))
        self.classes('cxt-heading q-my-none')


def heading(text: str, *, level: int = 2) -> Heading:
    """`h1` once per page (the frame's title), `h2` for each card, `h3` inside a card."""
    return Heading(text, level=level)


@contextmanager
def dialog_card(title: str, *, width: str = 'max-w-lg') -> Iterator[ui.dialog]:
    """A dialog named by its title: an `h2` that the dialog's `aria-labelledby` points at. Open it with `.open()` or
    `await dialog`; once closed it deletes itself, after Quasar has given the focus back to the control that opened it
    (deleting it at once would skip that).

        with theme.dialog_card('Rotate API Key?') as dialog:
            ...
        picked = await dialog
    """
    with ui.dialog() as dialog, ui.card().classes(f'w-full {width}'):
        title_heading = heading(title, level=2)
        dialog.props(f'aria-labelledby={title_heading.html_id}')
        yield dialog
    # Closed is gone (for the server's view of the page too); deleted once the browser has finished closing it.
    dialog.on_value_change(lambda event: None if event.value else dialog.set_visibility(False))
    dialog.on('hide', dialog.delete)
