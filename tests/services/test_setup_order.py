"""A script that uses the services before start-up's set-up is told which call it is missing."""

import pytest
from sqlmodel import select

from models import Organization
from services import config, crypto, db


def test_settings_before_configure_name_the_missing_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, '_current', None)  # a fresh process: nothing configured yet
    with pytest.raises(RuntimeError, match=r'services\.config\.configure\(\) has not been called'):
        config.current_settings()
    # A service that needs the settings (here: the secret) fails the same way, not with an AttributeError on None.
    with pytest.raises(RuntimeError, match=r'configure\(\) has not been called'):
        crypto.encrypt('cxt_a-key-to-store')


def test_a_transaction_before_init_database_names_the_missing_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, '_engine', None)  # a fresh process: no engine yet
    with pytest.raises(RuntimeError, match=r'init_database\(\) has not been called'), db.read_scope() as session:
        session.exec(select(Organization)).all()
    config.configure(config.load_settings())
    engine = db.init_database(config.current_settings().resolved_database_url)
    try:
        with db.read_scope() as session:
            assert session.exec(select(Organization)).all() == []
    finally:
        engine.dispose()
