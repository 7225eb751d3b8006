"""The one time format (ui/components/times.py): relative words, the exact time in the reader's zone, ISO times in
texts rewritten."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ui.components import times

NOW = datetime(2026, 12, 4, 17, 20, tzinfo=UTC)
BERLIN = ZoneInfo('Europe/Berlin')


@pytest.mark.parametrize(
    ('offset', 'expected'),
    [
        (timedelta(seconds=-20), 'just now'),
        (timedelta(seconds=20), 'in less than a minute'),
        (timedelta(minutes=-2), '2 min ago'),
        (timedelta(minutes=-59, seconds=-59), '59 min ago'),
        (timedelta(hours=23, minutes=10), 'in 23 h'),
        (timedelta(hours=-1), '1 h ago'),
        (timedelta(hours=-47), '47 h ago'),
        (timedelta(days=-3, hours=-2), '3 days ago'),
        (timedelta(days=6, hours=23), 'in 6 days'),
    ],
)
def test_relative_words(offset: timedelta, expected: str) -> None:
    assert times.relative(NOW + offset, NOW) == expected


def test_far_away_times_give_their_date_in_the_readers_zone() -> None:
    moment = datetime(2026, 10, 1, 23, 30, tzinfo=UTC)
    assert times.relative(moment, NOW) == 'on 2026-10-01'
    assert times.relative(moment, NOW, BERLIN) == 'on 2026-10-02'  # already the next day in Berlin


def test_exact_time_is_in_the_readers_zone_with_its_abbreviation() -> None:
    assert times.exact(NOW, UTC) == '2026-12-04 17:20 UTC'
    assert times.exact(NOW, BERLIN) == '2026-12-04 18:20 CET'
    assert times.exact(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), BERLIN) == '2026-07-01 14:00 CEST'
    assert times.exact(datetime(2026, 12, 4, 17, 20), ZoneInfo('America/New_York')) == '2026-12-04 12:20 EST'


def test_both_says_exact_then_relative() -> None:
    assert times.both(NOW + timedelta(hours=23), NOW, BERLIN) == '2026-12-05 17:20 CET (in 23 h)'


def test_iso_times_inside_a_text_are_rewritten() -> None:
    text = 'old key valid until 2026-12-05T14:39+00:00'
    assert times.embed_times(text, BERLIN) == 'old key valid until 2026-12-05 15:39 CET'
    assert times.embed_times('at 2026-12-05T14:39:07.123Z and 2026-12-05T14:39-05:00', UTC) == (
        'at 2026-12-05 14:39 UTC and 2026-12-05 19:39 UTC'
    )
    assert times.embed_times('immediately', BERLIN) == 'immediately'
    assert times.embed_times('build 2026-12-05 not a time', BERLIN) == 'build 2026-12-05 not a time'


@pytest.mark.parametrize(('name', 'expected'), [('Europe/Berlin', 'Europe/Berlin'), (None, 'UTC'), ('', 'UTC')])
def test_zone_names(name: str | None, expected: str) -> None:
    assert times.zone_label(times.zone_named(name)) == expected


def test_unknown_or_hostile_zone_names_fall_back_to_utc() -> None:
    for name in ('Nowhere/Special', '../../etc/passwd', 'x' * 100):
        assert times.zone_named(name) is UTC
