"""Tab `Activity`: the audit log, newest first (admins), a page at a time.

`Older` / `Newer` move a page (25 or 50 entries) along the log by keyset (the (time, id) of the entry at the page's
edge, see `services/audit.py`), so the thousandth page costs what the first does. Filters by person and kind and a
search box narrow it; `Export CSV` downloads every entry the filters match (not only the page shown; up to
`audit.EXPORT_LIMIT` entries, the newest first). Times are shown in one format in the reader's own time zone, which
the browser tells once (UTC if it does not answer): relative (`2 min ago`), the exact time on hover and focus
(`ui/components/times.py`). On phones each entry is a card; on wider screens a table.
"""

from dataclasses import dataclass
from datetime import datetime, tzinfo

from nicegui import background_tasks, ui

from models import AuditEvent, User
from models.audit import ACTION_LABELS, action_label
from models.base import utcnow
from services import audit
from services.audit import ActivityFilters, ActivityPage, Cursor, Person
from ui import actions, theme
from ui.components import times
from ui.components.paged_table import PagedTable, cell_label

TIME_ZONE_SCRIPT = 'Intl.DateTimeFormat().resolvedOptions().timeZone'
TIME_ZONE_TIMEOUT = 5.0  # seconds the browser has to answer; until then (and if it never does) times are in UTC
SEARCH_DEBOUNCE_MS = 400

COLUMNS = [
    {'name': 'when', 'label': 'When', 'field': 'when', 'align': 'left', 'classes': 'cxt-when'},
    {'name': 'who', 'label': 'Who', 'field': 'who', 'align': 'left'},
    {'name': 'what', 'label': 'What', 'field': 'what', 'align': 'left', 'classes': 'cxt-what'},
    {'name': 'target', 'label': 'Target', 'field': 'target', 'align': 'left'},
    {'name': 'ip', 'label': 'Client IP', 'field': 'ip', 'align': 'left'},
]

# Phones (below Quasar's `sm`, 600 px): each entry becomes a card (what was done first, then its target, when and
# who, and the client IP under its label), so nothing is clipped or scrolls sideways. Long addresses wrap anywhere.
_CSS = """
.cxt-activity-table .cxt-cell-label { display: none; }
.cxt-activity-table tbody td { white-space: normal; overflow-wrap: anywhere; }
.cxt-activity-table tbody td.cxt-when { white-space: nowrap; }
@media (max-width: 599.98px) {
  .cxt-activity-table thead { display: none; }
  .cxt-activity-table .q-table, .cxt-activity-table tbody { display: block; }
  .cxt-activity-table tbody tr { display: flex; flex-direction: column; align-items: flex-start; gap: 2px;
    height: auto; border: 1px solid #d1d5db; border-radius: 4px; padding: 8px 12px; margin-bottom: 8px; }
  .cxt-activity-table tbody td { display: block; height: auto; padding: 0; border: none; width: 100%;
    font-size: 14px; }
  .cxt-activity-table tbody td.cxt-what { order: -2; font-size: 16px; font-weight: 500; }
  .cxt-activity-table tbody td.cxt-target { order: -1; }
  .cxt-activity-table tbody td.cxt-empty { display: none; }
  .cxt-activity-table tbody td.cxt-when, .cxt-activity-table tbody td.cxt-who { color: #4b5563; }
  .cxt-activity-table .cxt-cell-label { display: inline; color: #4b5563; }
}
"""
ui.add_css(_CSS, shared=True)


_ROW_TEMPLATE = f"""
<q-tr :props="props">
  <q-td key="when" :props="props">{cell_label('When ')}<time class="cxt-time" tabindex="0" :datetime="props.row.iso"
    :title="props.row.when">{{{{ props.row.ago }}}}</time></q-td>
  <q-td key="who" :props="props" class="cxt-who">{cell_label('By ')}{{{{ props.row.who }}}}</q-td>
  <q-td key="what" :props="props">{{{{ props.row.what }}}}</q-td>
  <q-td key="target" :props="props" :class="['cxt-target', {{'cxt-empty': !props.row.target}}]">
    {{{{ props.row.target }}}}</q-td>
  <q-td key="ip" :props="props" :class="{{'cxt-empty': !props.row.ip}}">{cell_label('Client IP ')}{{{{ props.row.ip }}}}
  </q-td>
</q-tr>
"""


def _shown_texts(row: dict) -> list:
    shown = (row.get(name) for name in ('when', 'ago', 'who', 'what', 'target', 'ip'))
    return [text for text in shown if text]


@dataclass(frozen=True)
class Position:
    """Which page is shown: the newest, or the one just older or newer than a cursor."""

    older_than: Cursor | None = None
    newer_than: Cursor | None = None


async def build(*, user: User, tab: ui.tab, tabs: ui.tabs) -> None:
    view = ActivityView()

    async def on_tab_change(_: object) -> None:
        if tabs.value == tab.props['name'] and view.shown is not None:
            await view.reload()  # fresh entries whenever the admin comes back to the tab

    tabs.on_value_change(on_tab_change)
    # Read once the browser is connected: it is asked for its time zone alongside (see `ActivityView.start`).
    ui.timer(0, view.start, once=True)


class ActivityView:
    """The Activity card: filters, the page of entries, paging and export, and what it currently shows."""

    def __init__(self) -> None:
        self.zone: tzinfo = times.reader_zone()  # what the browser said on an earlier page; asked again below
        self.filters = ActivityFilters()
        self.size = audit.PAGE_SIZES[0]
        self.position = Position()
        self.shown: ActivityPage | None = None
        self._request = 0  # only the answer to the latest request is shown

        with ui.card().classes('w-full gap-3') as self.card:
            with ui.row().classes('w-full items-center gap-2'):
                theme.heading('Activity', level=2)
                ui.space()
                ui.button('Refresh', icon='refresh', on_click=self.refresh).props('flat no-caps')
                self.export_button = ui.button('Export CSV', icon='download', on_click=self.export)
                self.export_button.props('outline no-caps').mark('activity-export')
            with ui.row().classes('w-full items-start gap-2'):
                self.person = ui.select({}, label='Person', with_input=True, clearable=True)
                self.person.classes('w-full sm:w-56').props('outlined dense').mark('activity-person')
                self.kind = ui.select(_kind_options(), label='Kind', clearable=True)
                self.kind.classes('w-full sm:w-56').props('outlined dense').mark('activity-kind')
                self.search = ui.input('Search', placeholder='Target, email or IP address')
                self.search.classes('w-full sm:w-64').mark('activity-search')
                self.search.props(f'outlined dense clearable debounce={SEARCH_DEBOUNCE_MS} maxlength=100 type=search')
                with self.search.add_slot('prepend'):
                    ui.icon('search').props('aria-hidden=true')
                self.per_page = ui.select(list(audit.PAGE_SIZES), value=self.size, label='Per page')
                self.per_page.classes('w-full sm:w-28').props('outlined dense').mark('activity-per-page')
            self.zone_note = (
                ui.label(f'Times in {times.zone_label(self.zone)}').classes('text-sm text-grey-8').mark('activity-zone')
            )
            # The page of entries shown; `Older` and `Newer` page it (by keyset), not the table.
            self.table = PagedTable(columns=COLUMNS, shown=_shown_texts, page_size=None)
            self.table.classes('w-full cxt-activity-table').mark('activity-table')
            self.table.add_slot('body', _ROW_TEMPLATE)
            self.empty = ui.label().classes('text-body2 text-grey-8 q-pa-sm').mark('activity-empty')
            self.empty.set_visibility(False)
            with ui.row().classes('w-full items-center gap-2'):
                self.status = ui.label().classes('text-sm text-grey-8').props('role=status aria-live=polite')
                ui.space()
                self.newer_button = ui.button('Newer', icon='chevron_left', on_click=self.newer)
                self.newer_button.props('outline no-caps').mark('activity-newer')
                self.older_button = ui.button('Older', on_click=self.older)
                self.older_button.props('outline no-caps icon-right=chevron_right').mark('activity-older')
        self.newer_button.disable()
        self.older_button.disable()
        self.person.on_value_change(self._filters_changed)
        self.kind.on_value_change(self._filters_changed)
        self.search.on_value_change(self._filters_changed)
        self.per_page.on_value_change(self._size_changed)

    async def start(self) -> None:
        # The time zone is asked for alongside the first read, not before it: a browser that does not answer (or a
        # slow one) gets its entries at once, in UTC, and their times change in place if the zone arrives later.
        background_tasks.create(self._learn_time_zone(), name='activity time zone', context=self.card)
        everyone = await actions.act(lambda db, me: audit.people(session=db, actor=me.user), read_only=True)
        if everyone is not None:
            self.person.set_options(_person_options(everyone))
        await self._show(Position())

    async def _learn_time_zone(self) -> None:
        zone = await _reader_time_zone()
        if zone == self.zone:
            return
        self.zone = zone
        self.zone_note.set_text(f'Times in {times.zone_label(zone)}')
        if self.shown is not None:
            self._render(self.shown)

    async def reload(self) -> None:
        """The same page again (the newest entries when it is the first)."""
        await self._show(self.position)

    async def refresh(self) -> None:
        """Back to the newest entries."""
        await self._show(Position())

    async def older(self) -> None:
        if self.shown is not None and self.shown.oldest is not None:
            await self._show(Position(older_than=self.shown.oldest), button=self.older_button)

    async def newer(self) -> None:
        if self.shown is not None and self.shown.newest is not None:
            await self._show(Position(newer_than=self.shown.newest), button=self.newer_button)

    async def export(self) -> None:
        filters, zone = self.filters, self.zone
        result = await actions.act(
            lambda db, me: audit.export_csv(session=db, actor=me.user, filters=filters, zone=zone),
            button=self.export_button,
            fields=self._fields(),
            read_only=True,
        )
        if result is None:
            return
        stamp = utcnow().astimezone(zone).strftime('%Y-%m-%d-%H%M')
        # A byte order mark, so spreadsheet programs read the names and addresses as UTF-8.
        ui.download.content(('\ufeff' + result.text).encode(), f'activity-{stamp}.csv', 'text/csv')
        if result.truncated:
            ui.notify(
                f'Exported the newest {result.rows:,} entries. Narrow the filters to export older ones.',
                type='warning',
                multi_line=True,
            )
        else:
            ui.notify(f'Exported {_entries(result.rows)}.', type='positive')

    async def _filters_changed(self) -> None:
        self.filters = ActivityFilters(
            person=self.person.value or None, action=self.kind.value or None, search=self.search.value or ''
        )
        await self._show(Position())

    async def _size_changed(self) -> None:
        if self.per_page.value in audit.PAGE_SIZES:
            self.size = self.per_page.value
            await self._show(Position())

    def _fields(self) -> dict[str, ui.element]:
        return {'search': self.search, 'action': self.kind, 'person': self.person, 'size': self.per_page}

    async def _show(self, position: Position, *, button: ui.button | None = None) -> None:
        self._request += 1
        request = self._request
        filters, size = self.filters, self.size
        page = await actions.act(
            lambda db, me: audit.activity_page(
                session=db,
                actor=me.user,
                filters=filters,
                size=size,
                older_than=position.older_than,
                newer_than=position.newer_than,
            ),
            button=button,
            fields=self._fields(),
            read_only=True,
        )
        if page is None or request != self._request:
            return  # refused (the person was told why), or a newer request has taken its place
        self.shown, self.position = page, position
        self._render(page)
        self.empty.set_text('No entries match these filters.' if _narrowed(filters) else 'Nothing has happened yet.')
        # One message for an empty result: ours, not the table's own `No data available` as well.
        self.empty.set_visibility(not page.events)
        self.table.set_visibility(bool(page.events))
        self.newer_button.set_enabled(page.has_newer)
        self.older_button.set_enabled(page.has_older)
        if button is not None and not button.enabled:
            # The button just used has reached the end of the log: keep the keyboard on the way back.
            other = self.newer_button if button is self.older_button else self.older_button
            if other.enabled:  # after Vue has drawn it enabled
                ui.run_javascript(f'setTimeout(() => document.getElementById("c{other.id}")?.focus(), 50)')

    def _render(self, page: ActivityPage) -> None:
        """The page's entries, their times in the reader's zone."""
        now = times.now()
        rows = [_row(event, self.zone, now) for event in page.events]
        self.table.show_rows(rows)
        self.status.set_text(_describe(rows, page))


def _row(event: AuditEvent, zone: tzinfo, now: datetime) -> dict:
    return {
        'id': event.id,
        'when': times.exact(event.created_at, zone),
        'ago': times.relative(event.created_at, now, zone),
        'iso': event.created_at.isoformat(),
        'who': event.actor_email or 'system',
        'what': action_label(event.action),
        # Texts written with a time in them (`old key valid until 2026-12-05T14:39+00:00`) read in the reader's zone.
        'target': times.embed_times(event.target or '', zone),
        'ip': event.ip or '',
    }


async def _reader_time_zone() -> tzinfo:
    try:
        name = await ui.run_javascript(TIME_ZONE_SCRIPT, timeout=TIME_ZONE_TIMEOUT)
    except TimeoutError:
        name = None
    return times.zone_named(name if isinstance(name, str) else None)


def _kind_options() -> dict[str, str]:
    return {action.value: label for action, label in sorted(ACTION_LABELS.items(), key=lambda item: item[1])}


def _person_options(everyone: list[Person]) -> dict[str, str]:
    return {person.email: f'{person.name} ({person.email})' for person in everyone}


def _narrowed(filters: ActivityFilters) -> bool:
    return bool(filters.person or filters.action or filters.search)


def _entries(count: int) -> str:
    return '1 entry' if count == 1 else f'{count:,} entries'


def _describe(rows: list[dict], page: ActivityPage) -> str:
    if not rows:
        return ''
    span = rows[0]['when'] if len(rows) == 1 else f'{rows[0]["when"]} back to {rows[-1]["when"]}'
    newest = '' if page.has_newer else ', the newest'
    return f'{_entries(len(rows))}{newest}: {span}'
