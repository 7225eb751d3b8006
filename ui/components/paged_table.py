"""A table whose rows are one page read on the server: the page holds only the rows it shows, as plain data, so memory
and time stay the same whether there are ten rows or a thousand.

Its browser code is `paged_table.js` (Quasar's table with our sortable column headings, page controls and row-menu
keys). Rows are drawn by a row template (`body` slot) the caller adds; what they show counts as the table's text, so
`user.should_see` finds a name or a button drawn by the template. The Team Members and Invitations lists page, sort
and search on the server (`PageQuery`); the Activity tab shows the page of entries it read itself (`page_size=None`).
"""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, Self

from nicegui import events, ui

from ui import nicegui_compat

PAGE_SIZE = 25

# The sort buttons of the column headings, and the buttons that row templates draw (`cxt-action`).
_CSS = """
.cxt-action { font: inherit; font-size: 14px; line-height: 20px; padding: 4px 8px; border: 1px solid transparent;
  border-radius: 4px; background: none; color: var(--q-primary); cursor: pointer; white-space: nowrap; }
.cxt-action:hover { background: rgba(0, 0, 0, .06); }
.cxt-action:focus-visible, .cxt-sort:focus-visible { outline: 2px solid var(--q-primary); outline-offset: 2px; }
.cxt-sort { font: inherit; font-weight: 500; color: inherit; background: none; border: none; padding: 2px 4px;
  margin-left: -4px; border-radius: 4px; cursor: pointer; display: inline-flex; align-items: center; gap: 4px; }
.cxt-sort:hover { background: rgba(0, 0, 0, .06); }
.cxt-sort .cxt-sort-arrow { opacity: 0; font-size: 16px; }
.cxt-sort:hover .cxt-sort-arrow, .cxt-sort:focus-visible .cxt-sort-arrow { opacity: .6; }
.cxt-sort .cxt-sort-arrow.cxt-sorted { opacity: 1; }
"""
ui.add_css(_CSS, shared=True)


def cell_label(text: str) -> str:
    """A cell's label for a row template: shown only where each row is a card of its own (phones)."""
    return f'<span class="cxt-cell-label">{text}</span>'


@dataclass(frozen=True)
class PageQuery:
    """Which page of a server-paged list is shown: its number, its order and the search that narrows it."""

    page: int = 1
    sort_by: str | None = None
    descending: bool = False
    search: str = ''

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def from_request(self, args: Any) -> Self:
        """The page and order a table's `request` event asks for (anything malformed: the first page, unsorted)."""
        pagination = args.get('pagination', {}) if isinstance(args, dict) else {}
        page = pagination.get('page')
        return replace(
            self,
            page=page if isinstance(page, int) and page >= 1 else 1,
            sort_by=pagination.get('sortBy') if isinstance(pagination.get('sortBy'), str) else None,
            descending=bool(pagination.get('descending')),
        )

    def last_page(self, total: int) -> Self:
        """The last page there is of `total` rows (after the last rows of the shown page went away)."""
        return replace(self, page=(total - 1) // PAGE_SIZE + 1)


class PagedTable(nicegui_compat.ShownTexts, ui.table, component='paged_table.js'):
    """Rows shown a page at a time, `shown(row)` giving the texts each row shows. With `page_size`, the page controls
    ask the server for pages and orders (`request` events, see `PageQuery`); without, the caller pages.

    `anchor`, a hidden element just before the table, outlives every row: handlers of the rows' events run inside it
    (`on_row`, `anchored`), so their notifications and dialogs stay when the rows are drawn anew."""

    def __init__(
        self,
        *,
        columns: list[dict],
        shown: Callable[[dict], list],
        page_size: int | None = PAGE_SIZE,
    ) -> None:
        pagination = None
        if page_size is not None:
            pagination = {'rowsPerPage': page_size, 'page': 1, 'rowsNumber': 0, 'sortBy': None, 'descending': False}
        anchor = ui.element('div').classes('hidden')
        super().__init__(rows=[], columns=columns, row_key='id', pagination=pagination)
        self.anchor = anchor
        self.page_size = page_size
        self._shown = shown
        if page_size is not None:
            self.props(f':rows-per-page-options="[{page_size}]" binary-state-sort')
        self.props('flat wrap-cells')
        self._mark_sorted(None, descending=False)

    def shown_texts(self) -> list:
        return [text for row in self.rows for text in self._shown(row)]

    def on_row(self, event: str, handler: Callable[[int], Awaitable[None]]) -> None:
        """Call `handler` with the row id that the row template's `$parent.$emit(event, id)` sends."""

        async def run(event: events.GenericEventArguments) -> None:
            with self.anchor:
                await handler(row_id(event))

        self.on(event, run)

    def show_rows(self, rows: list[dict]) -> None:
        """Show `rows` (a table the caller pages itself)."""
        self.rows = rows

    def show_page(self, rows: list[dict], *, total: int, query: PageQuery) -> None:
        """Show `rows` as page `query.page` of `total`; nothing is sent when nothing changed."""
        pagination = {
            'rowsPerPage': self.page_size,
            'page': query.page,
            'rowsNumber': total,
            'sortBy': query.sort_by,
            'descending': query.descending,
        }
        if rows == self.rows and pagination == self.pagination:
            return
        self.rows = rows
        self.pagination = pagination
        self._mark_sorted(query.sort_by, descending=query.descending)
        self.update()

    def _mark_sorted(self, sort_by: str | None, *, descending: bool) -> None:
        """Tell each column heading whether the rows are sorted by it (`aria-sort`, and its arrow)."""
        for column in self.columns:
            if column.get('sortable'):
                sorted_here = column['name'] == sort_by
                column['sorted'] = ('descending' if descending else 'ascending') if sorted_here else None


def row_id(event: events.GenericEventArguments) -> int:
    """The row id a row template's event carries (-1 when it carries none: no row has it)."""
    value = event.args
    if isinstance(value, list) and value:
        value = value[0]
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else -1


class Anchored(Protocol):
    anchor: ui.element


def anchored(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Run a view's handler inside its `anchor`, so its notifications and dialogs outlive whatever row it came from."""

    @functools.wraps(handler)
    async def run_anchored(self: Anchored, *args: Any, **kwargs: Any) -> None:
        with self.anchor:
            await handler(self, *args, **kwargs)

    return run_anchored


def search_box(label: str, on_search: Callable[[str], Awaitable[None]]) -> ui.input:
    """A search field for a server-paged list: `on_search` gets the text once typing pauses."""

    async def changed(event: events.ValueChangeEventArguments) -> None:
        await on_search(str(event.value or ''))

    box = ui.input(label, on_change=changed).props('dense clearable debounce=300 type=search maxlength=200')
    return box.classes('w-full sm:w-72')
