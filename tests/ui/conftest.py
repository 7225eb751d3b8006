"""UI tests wait like a person does: every action now runs off the event loop, so what it shows appears a moment
after the click, later still on a busy machine."""

import functools

import pytest
from nicegui.testing import User

PATIENCE = 30  # attempts, 0.1 s apart: up to 3 s for a page to show (or stop showing) something


@pytest.fixture(autouse=True)
def patient_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(User, 'should_see', functools.partialmethod(User.should_see, retries=PATIENCE))
    monkeypatch.setattr(User, 'should_not_see', functools.partialmethod(User.should_not_see, retries=PATIENCE))
