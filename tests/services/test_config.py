import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from services import config
from services.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ('variable', 'value'),
    [
        ('CXT_PORT', 'eighty'),
        ('CXT_PORT', '70000'),
        ('CXT_SMTP_SECURITY', 'tls-please'),
        ('CXT_SMTP_PORT', 'x'),
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        config.load_settings()
    assert str(raised.value).startswith(f'{variable}: ')
    assert '\n' not in str(raised.value)


def test_bad_value_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(('CXT_', 'PYTEST'))}
    env.update(CXT_PORT='abc', CXT_DATA_DIR=str(tmp_path / 'data'))
    result = subprocess.run(
        [sys.executable, str(ROOT / 'main.py')], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert 'CXT_PORT' in result.stderr


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / '.env').write_text('CXT_PORT=9123\nCXT_SMTP_SECURITY=ssl\n')
    settings = config.load_settings()
    assert (settings.port, settings.smtp_security) == (9123, 'ssl')


def test_defaults(isolated_environment: Path) -> None:
    settings = config.load_settings()
    assert (settings.host, settings.port, settings.smtp_port, settings.smtp_security) == (
        '127.0.0.1',
        8080,
        587,
        'starttls',
    )
    assert settings.resolved_public_url == 'http://127.0.0.1:8080'
    assert settings.resolved_database_url.startswith('sqlite:///')
    assert not settings.mail_configured and not settings.billing_configured


def test_secret_is_generated_once_with_mode_0600(isolated_environment: Path) -> None:
    settings = config.load_settings()
    first = config.resolve_secret_key(settings)
    path = isolated_environment / config.SECRET_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.resolve_secret_key(config.load_settings()) == first
    assert len(first) >= 32


def test_configured_secret_wins(monkeypatch: pytest.MonkeyPatch, isolated_environment: Path) -> None:
    monkeypatch.setenv('CXT_SECRET_KEY', 's' * 40)
    assert config.resolve_secret_key(config.load_settings()) == 's' * 40
    assert not (isolated_environment / config.SECRET_FILE_NAME).exists()
