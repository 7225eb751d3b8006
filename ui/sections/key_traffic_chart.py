"""The key's traffic in Dashboard Settings (admins): widget API requests per key as a chart, and the line in each
grace notice that says how much the old key is still used."""

from typing import Any

from nicegui import ui

from models import Role, User
from services.errors import ServiceError
from services.keys import api_keys, key_traffic
from services.keys.key_traffic import Granularity, Traffic
from ui import actions, theme

TITLE = "The key's traffic"
RANGES: dict[Granularity, str] = {'hour': 'Last 7 days, by hour', 'day': 'Last 30 days, by day'}
REFRESH_SECONDS = 60.0
EMPTY = 'No widget has called the API in this period. Requests appear here within a minute.'
CURRENT_COLOR = '#1f4fd1'  # the theme's primary
OLD_COLORS = ('#6d4c00', '#5b5b5b', '#00695c')  # old keys: dark amber, grey, teal (all >= 4.5:1 on white)
REFUSED_COLOR = '#c62828'  # refused requests: red (5.6:1 on white)


def chart_options(traffic: Traffic) -> dict[str, Any]:
    """ECharts options: one line per key for accepted requests (the current key solid blue, old keys dashed) and a
    red line per key that had refused requests."""
    series: list[dict[str, Any]] = []
    old_index = 0
    for key in traffic.keys:
        name = f'{"Current" if key.current else "Old"} key …{key.last4}'
        if key.current:
            color, line = CURRENT_COLOR, 'solid'
        else:
            color, line = OLD_COLORS[old_index % len(OLD_COLORS)], 'dashed'
            old_index += 1
        series.append(_line(name, key.accepted, color, line))
        if any(key.refused):
            series.append(_line(f'Refused, {name[0].lower()}{name[1:]}', key.refused, REFUSED_COLOR, line))
    return {
        'aria': {'enabled': True},  # ECharts describes the chart to screen readers
        'animation': False,
        'grid': {'left': 48, 'right': 16, 'top': 56, 'bottom': 40},
        'tooltip': {'trigger': 'axis'},
        'legend': {'type': 'scroll', 'top': 0},
        # Ticks between the labels, labels that would overlap left out: no tick mark runs through a label.
        'xAxis': {
            'type': 'category',
            'data': traffic.labels,
            'boundaryGap': False,
            'axisTick': {'show': False},
            'axisLabel': {'hideOverlap': True, 'margin': 12},
        },
        'yAxis': {'type': 'value', 'minInterval': 1, 'name': 'Requests'},
        'series': series,
    }


def _line(name: str, data: list[int], color: str, line: str) -> dict[str, Any]:
    return {
        'name': name,
        'type': 'line',
        'data': data,
        'color': color,
        'itemStyle': {'color': color},
        'lineStyle': {'color': color, 'type': line, 'width': 2},
        'showSymbol': False,
    }


def summary(traffic: Traffic) -> str:
    """The chart in words (for screen readers, and for anyone who prefers numbers)."""
    span = RANGES[traffic.granularity]
    if not traffic.keys or all(key.total == 0 for key in traffic.keys):
        return f'{span}: no requests yet.'
    parts = [
        f'{"current" if key.current else "old"} key {api_keys.mask(key.last4)}: '
        f'{sum(key.accepted)} accepted, {sum(key.refused)} refused'
        for key in traffic.keys
    ]
    return f'{span}: ' + '; '.join(parts) + '.'


class KeyTrafficChart:
    """Card `The key's traffic`: the organization's keys' requests, 7 days by hour or 30 days by day."""

    def __init__(self, *, user: User) -> None:
        self.user = user
        self.granularity: Granularity = 'hour'
        with ui.card().classes('w-full') as self.card:
            theme.heading(TITLE, level=2)
            ui.label(
                'Widget API requests per key. After a rotation, watch the traffic move to the new key before you '
                'revoke the old one; refused requests (red) come from integrations still using a stopped key.'
            ).classes('text-sm text-grey-8')
            self.toggle = (
                ui.toggle(dict(RANGES), value=self.granularity, on_change=self._range_changed)
                .props('no-caps padding="6px 14px" aria-label="Time range"')
                .classes('q-my-sm')
                .mark('traffic-range')
            )
            self.chart = ui.echart({'series': []}).classes('w-full h-72').mark('key-traffic-chart')
            self.chart.props(f'aria-label="{TITLE}"')
            # No requests yet: one line instead of a large blank chart.
            self.empty = ui.label('').classes('text-body2 text-grey-8 q-py-md').mark('traffic-empty')
            self.summary = ui.label('').classes('text-sm').mark('traffic-summary')
        ui.timer(REFRESH_SECONDS, self.reload, immediate=False)

    @classmethod
    async def create(cls, *, user: User) -> 'KeyTrafficChart | None':
        """The card with its data loaded, for admins (None for anyone else)."""
        if user.role != Role.ADMIN:
            return None
        chart = cls(user=user)
        await chart.reload()
        return chart

    async def _range_changed(self) -> None:
        self.granularity = self.toggle.value
        await self.reload()

    async def reload(self) -> None:
        granularity = self.granularity
        try:
            traffic = await actions.read(
                lambda db: key_traffic.traffic(session=db, actor=self.user, granularity=granularity)
            )
        except ServiceError:  # no longer an admin: the page reloads for that; show nothing meanwhile
            self.card.set_visibility(False)
            return
        self.chart.options.clear()
        self.chart.options.update(chart_options(traffic))
        self.chart.update()
        empty = not traffic.keys or all(key.total == 0 for key in traffic.keys)
        self.chart.set_visibility(not empty)
        self.empty.set_text(EMPTY if empty else '')
        self.empty.set_visibility(empty)
        self.summary.text = summary(traffic)


def old_key_requests(*, user: User, key_id: int) -> ui.label | None:
    """`Old key: N requests in the last hour` for a grace notice (admins; loaded off the loop, kept fresh)."""
    if user.role != Role.ADMIN:
        return None
    label = ui.label('').classes('text-body2').mark(f'old-key-requests-{key_id}')

    async def load() -> None:
        try:
            count = await actions.read(lambda db: key_traffic.requests_last_hour(session=db, actor=user, key_id=key_id))
        except ServiceError:
            return
        label.text = requests_text(count)

    ui.timer(REFRESH_SECONDS, load, immediate=True)
    return label


def requests_text(count: int) -> str:
    """`Old key: N requests in the last hour`."""
    return f'Old key: {count} request{"" if count == 1 else "s"} in the last hour'
