"""The dashboard's banner while the server cannot save: it appears when the database file is gone or the disk is
(almost) full, says why, is announced (role=alert), and goes away once the server can save again."""

import shutil
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing import User

from services.operations import readiness
from tests.ui.helpers import set_up_organization
from ui.sections import save_banner

CANNOT_SAVE = 'The server cannot save changes right now'


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask every 0.2 s instead of every 10 s, and never answer from an earlier test's check."""
    monkeypatch.setattr(save_banner, 'REFRESH_SECONDS', 0.2)
    monkeypatch.setattr(save_banner, 'MAX_AGE', 0.0)


def banner_text(user: User) -> str:
    (banner,) = user.find(marker='save-banner').elements
    assert banner.props['role'] == 'alert'
    return ' '.join(label.text for label in banner.descendants() if isinstance(label, ui.label))


async def test_a_database_file_moved_away_shows_the_banner_until_it_is_back(
    user: User, isolated_environment: Path
) -> None:
    await set_up_organization(user)
    await user.should_see('Dashboard Settings')
    await user.should_not_see(CANNOT_SAVE)
    database, aside = isolated_environment / 'cxt.sqlite3', isolated_environment / 'moved-away.sqlite3'
    database.rename(aside)  # as an operator's slip would: the process still has it open, at a path that is gone
    try:
        await user.should_see(CANNOT_SAVE)
        assert banner_text(user) == (
            'The server cannot save changes right now: the database this process opened is gone (deleted or '
            'replaced): restore it and restart. Changes you make now may not be saved.'
        )
    finally:
        aside.rename(database)
    await user.should_not_see(CANNOT_SAVE)


async def test_a_nearly_full_disk_shows_the_banner_until_there_is_room(
    user: User, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_up_organization(user)
    await user.should_not_see(CANNOT_SAVE)
    # The disk cannot be filled safely here; instead the threshold is raised above what is really free, which is the
    # same comparison of the data directory's real free space.
    free = shutil.disk_usage(isolated_environment).free
    monkeypatch.setattr(readiness, 'MIN_FREE_BYTES', free + 10**12)
    await user.should_see(CANNOT_SAVE)
    assert banner_text(user) == (
        "The server cannot save changes right now: the data directory's disk is (almost) full. "
        'Changes you make now may not be saved.'
    )
    monkeypatch.setattr(readiness, 'MIN_FREE_BYTES', 1)
    await user.should_not_see(CANNOT_SAVE)
