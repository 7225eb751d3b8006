"""One way to show a time, everywhere: in the reader's time zone, relative (`2 min ago`, `in 23 h`), the exact time on
hover and on keyboard focus.

The browser tells its zone once, as a cookie (`ZONE_COOKIE`, written by the script every page carries, see
`theme.apply_page_style`), so a page is built in the reader's zone from its first request on; UTC until it has.
The formatting functions are pure (a moment, `now`, a zone in; text out) and unit-tested.
"""

import re
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nicegui import context, ui

ZONE_COOKIE = 'cxt_tz'
EXACT_FORMAT = '%Y-%m-%d %H:%M'
RELATIVE_LIMIT = timedelta(days=30)  # beyond this, the date itself says more than `in 45 days`

# Written on every page: the reader's IANA zone (`Europe/Berlin`), a year long, readable by the server only as a hint.
ZONE_SCRIPT = f"""
<script>
try {{
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) document.cookie = '{ZONE_COOKIE}=' + encodeURIComponent(zone) + '; path=/; max-age=31536000; samesite=lax';
}} catch (error) {{}}
</script>
"""

# An ISO 8601 time inside a text (`old key valid until 2026-12-05T14:39+00:00`), with its offset: a moment, not a
# wall-clock reading.
_ISO_TIME = re.compile(r'\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})')


def zone_named(name: str | None) -> tzinfo:
    """The zone of an IANA name (as browsers give it); UTC for none or an unknown one."""
    if not name or len(name) > 64 or name == 'UTC':
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_label(zone: tzinfo) -> str:
    return 'UTC' if zone is UTC else str(zone)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def exact(moment: datetime, zone: tzinfo) -> str:
    """`2026-12-05 15:39 CET`: the wall-clock time in `zone` and the zone's abbreviation."""
    local = _aware(moment).astimezone(zone)
    abbreviation = local.tzname() or zone_label(zone)
    return f'{local.strftime(EXACT_FORMAT)} {abbreviation}'


def relative(moment: datetime, now: datetime, zone: tzinfo = UTC) -> str:
    """`just now`, `2 min ago`, `in 23 h`, `3 days ago`, `in 6 days`; the date in `zone` when over 30 days away."""
    delta = _aware(moment) - _aware(now)
    future = delta > timedelta(0)
    span = abs(delta)
    if span >= RELATIVE_LIMIT:
        return f'on {_aware(moment).astimezone(zone):%Y-%m-%d}'
    if span < timedelta(minutes=1):
        return 'in less than a minute' if future else 'just now'
    if span < timedelta(hours=1):
        amount = f'{int(span.total_seconds() // 60)} min'
    elif span < timedelta(hours=48):
        amount = f'{int(span.total_seconds() // 3600)} h'
    else:
        amount = f'{span.days} days'
    return f'in {amount}' if future else f'{amount} ago'


def both(moment: datetime, now: datetime, zone: tzinfo) -> str:
    """`2026-12-05 15:39 CET (in 23 h)`: for text that cannot carry a hover, like a sentence or a table cell."""
    return f'{exact(moment, zone)} ({relative(moment, now, zone)})'


def embed_times(text: str, zone: tzinfo) -> str:
    """Every ISO time inside `text` written the exact way in `zone`; the rest unchanged."""

    def rewrite(match: re.Match[str]) -> str:
        try:
            moment = datetime.fromisoformat(match.group(0).replace('Z', '+00:00'))
        except ValueError:
            return match.group(0)
        return exact(moment, zone)

    return _ISO_TIME.sub(rewrite, text)


def reader_zone() -> tzinfo:
    """The zone this page's browser said it is in (UTC until it has said)."""
    try:
        request = context.client.request
    except RuntimeError:  # no page being built
        return UTC
    cookie = request.cookies.get(ZONE_COOKIE) if request is not None else None
    return zone_named(unquote(cookie) if cookie else None)


def now() -> datetime:
    return datetime.now(UTC)


class TimeText(ui.label):
    """`<time>` with the relative text; its exact time in the title (shown on hover), and on keyboard focus after
    the text (`.cxt-time:focus::after`, CSS in `theme.py`). Focusable, so keyboard and touch users reach it too."""

    def __init__(self, moment: datetime, *, prefix: str = '', zone: tzinfo | None = None) -> None:
        zone = zone if zone is not None else reader_zone()
        exact_text = exact(moment, zone)
        super().__init__(f'{prefix}{relative(moment, now(), zone)}')
        self.tag = 'time'  # a label (found and read like one) written as `<time>`
        self.classes('cxt-time')
        self.props(f'datetime="{_aware(moment).isoformat()}" title="{exact_text}" tabindex=0')
        self.exact = exact_text


def time_text(moment: datetime, *, prefix: str = '', zone: tzinfo | None = None) -> TimeText:
    """E.g. `time_text(key.created_at, prefix='Created ')` shows `Created 2 min ago`, `2026-12-04 17:20 CET` on
    hover and focus."""
    return TimeText(moment, prefix=prefix, zone=zone)
