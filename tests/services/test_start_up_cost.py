"""A restart of a migrated instance loads only what serving needs (issue 11: <= 120 MB right after start-up)."""

import json
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from services import db

ROOT = Path(__file__).resolve().parents[2]

# Each is loaded by the first request that needs it: migrations, billing, PostgreSQL, passkeys, encryption, QR codes.
LAZY = ('alembic', 'stripe', 'psycopg', 'webauthn', 'cryptography', 'segno')
PROBE = f"""
import json, sys
from services import config, db
import api, ui.pages, ui.sections.passkeys  # what main.py imports to serve: pages, widget API, billing, events
settings = config.load_settings()
config.configure(settings)
db.init_database(settings.resolved_database_url)
print(json.dumps({{name: name in sys.modules for name in {LAZY!r}}}))
"""


def test_head_revision_is_alembics_head() -> None:
    config = Config()
    config.set_main_option('script_location', str(db.MIGRATIONS_DIR))
    assert db.head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_a_restart_at_head_loads_only_what_serving_needs(isolated_environment: Path) -> None:
    def start() -> dict[str, bool]:
        result = subprocess.run(
            [sys.executable, '-c', PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    first = start()  # an empty data dir: this start migrates
    assert first['alembic'] is True
    assert start() == dict.fromkeys(LAZY, False)


# Libraries only an action needs (a payment, an SSO or passkey sign-in, a mail, a migration, a QR code, a 2FA code):
# a server that starts and shows its first page loads none of them (bench/start_time.py times the start).
NOT_FOR_SERVING = ('stripe', 'authlib', 'webauthn', 'yagmail', 'alembic', 'segno', 'pyotp', 'cryptography', 'psycopg')
SERVER_PROBE = f"""
import json, sys
import main  # as the server does: every page registered, the API app and the start-up services imported
from services import db
db.init_database(main.settings.resolved_database_url)
print(json.dumps(sorted(name for name in {NOT_FOR_SERVING!r} if name in sys.modules)))
"""


def test_the_server_module_loads_no_library_that_only_an_action_needs(isolated_environment: Path) -> None:
    def start() -> list[str]:
        result = subprocess.run(
            [sys.executable, '-c', SERVER_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    assert start() == ['alembic']  # an empty data dir: this start migrates
    assert start() == []
