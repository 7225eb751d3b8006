"""The app's version: from pyproject.toml in a checkout, from the installed package's metadata otherwise."""

import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

PRODUCT_NAME = 'CX Toolbox Dashboard'  # as people see it: page titles, authenticator apps, passkey prompts
DISTRIBUTION = 'cx-toolbox-dashboard'
PYPROJECT = Path(__file__).resolve().parent.parent / 'pyproject.toml'


@cache
def app_version() -> str:
    """`0.1.0`: the checkout's own pyproject.toml wins (an older installed copy must not speak for it)."""
    if PYPROJECT.is_file():
        project = tomllib.loads(PYPROJECT.read_text()).get('project', {})
        if project.get('name') == DISTRIBUTION:
            return project['version']
    return metadata.version(DISTRIBUTION)
