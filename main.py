"""CX Toolbox Dashboard: `uv run main.py` serves the app (first-run setup at http://127.0.0.1:8080)."""

import logging
import os
import sys

from services.config import ConfigError, Settings, configure, load_settings, resolve_secret_key


def _settings_or_exit() -> tuple[Settings, str]:
    try:
        settings = load_settings()
        secret = resolve_secret_key(settings)
    except ConfigError as error:
        sys.exit(f'Configuration error: {error}')
    return settings, secret


settings, secret_key = _settings_or_exit()
configure(settings)
# NiceGUI fixes its storage folder when it is imported: point it into the data dir first.
os.environ.setdefault('NICEGUI_STORAGE_PATH', str((settings.data_dir / 'nicegui').resolve()))

import uvicorn  # noqa: E402
from nicegui import app as nicegui_app  # noqa: E402
from nicegui import run, ui  # noqa: E402

from api import create_api_app  # noqa: E402
from services import crypto  # noqa: E402
from services.db import init_database  # noqa: E402
from ui import pages, session_routes  # noqa: E402, F401  (importing pages registers every page)

if __name__ in {'__main__', '__mp_main__'}:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    run.process_pool_start_method = 'spawn'
    init_database(settings.resolved_database_url)
    nicegui_app.include_router(session_routes.router)
    app = create_api_app()
    ui.run_with(
        app,
        title='CX Toolbox Dashboard',
        storage_secret=crypto.session_secret(secret_key),
        session_middleware_kwargs={'https_only': settings.resolved_public_url.startswith('https://')},
        show_welcome_message=False,
    )
    if __name__ == '__main__' and not os.environ.get('NICEGUI_USER_SIMULATION'):
        print(f'CX Toolbox Dashboard on http://{settings.host}:{settings.port}', flush=True)
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level='warning', access_log=False, proxy_headers=True
        )
