"""Configuration problems an operator must be able to fix from one line: a damaged generated key, a short secret."""

from pathlib import Path

import pytest

from services import config
from services.errors import ConfigError


@pytest.mark.parametrize('damaged', ['', '\n', 'too-short'])
def test_a_damaged_generated_key_names_its_file_and_the_fix(isolated_environment: Path, damaged: str) -> None:
    settings = config.load_settings()
    path = isolated_environment / config.SECRET_FILE_NAME
    path.write_text(damaged)
    with pytest.raises(ConfigError) as raised:
        config.resolve_secret_key(settings)
    message = str(raised.value)
    assert message == f'CXT_SECRET_KEY: the generated key in {path} is damaged; delete it to make another'
    assert path.read_text() == damaged, 'the damaged file is left for the operator, not silently replaced'
    path.unlink()  # what the message says to do
    assert len(config.resolve_secret_key(settings)) >= 32


def test_a_too_short_secret_is_refused_by_name_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-line error never repeats a secret: main.py prints it to the start-up log."""
    monkeypatch.setenv('CXT_SECRET_KEY', 'hunter2-hunter2')
    with pytest.raises(ConfigError) as raised:
        config.load_settings()
    message = str(raised.value)
    assert message.startswith('CXT_SECRET_KEY: ') and '16 characters' in message
    assert '\n' not in message
    assert 'hunter2' not in message
