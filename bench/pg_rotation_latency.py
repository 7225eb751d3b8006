"""How long `Rotate` takes on PostgreSQL with the per-process key cache, and what rotations do to widget API latency.

Run from the repository root:

    uv run bench/pg_rotation_latency.py                 # 50 rotations per setup
    uv run bench/pg_rotation_latency.py --rotations 20

What it does: starts a throwaway PostgreSQL server (tests/postgres_server.py), seeds two organizations with a key each,
and starts `main.py` once with one app process and once with two on that database (one shared CXT_SECRET_KEY). This
process rotates organization A's key `--rotations` times (immediately, 0.1 s apart) through the services, listening
like an app process (services/key_cache.start), so each rotation returns once every process seen alive confirmed
it forgot the old key (or after 2 s). Meanwhile wrk loads every app process with organization B's key, which no
rotation touches but every rotation empties from the caches. Prints the rotation latency (median, max) and the
widget API's req/s and p99 during the rotations against a run without rotations, and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

import api_throughput as bench  # noqa: E402
from pg_processes import Setup, child_env, seed  # noqa: E402

from tests.factories import acting  # noqa: E402
from tests.postgres_server import PostgresServer, find_bin_dir  # noqa: E402


def second_organization(url: str, secret: str) -> str:
    """Organization B with its own key (the load's); returns the key."""
    from services import config, db
    from services.keys import api_keys
    from tests.factories import make_organization, make_user

    with bench.child_environment({**os.environ, 'CXT_DATABASE_URL': url, 'CXT_SECRET_KEY': secret}):
        config.configure(config.load_settings())
        engine = db.init_database(url)
        try:
            with db.write_scope() as session:
                admin = make_user(session, organization=make_organization(session, name='Other Org'))
                return api_keys.generate_key(session=session, actor=admin)
        finally:
            engine.dispose()


def rotations(url: str, secret: str, count: int) -> list[float]:
    """Rotate organization A's key `count` times from this process; the seconds each call took."""
    from sqlmodel import select

    from models import User
    from services import config, db
    from services.keys import api_keys

    with bench.child_environment({**os.environ, 'CXT_DATABASE_URL': url, 'CXT_SECRET_KEY': secret}):
        config.configure(config.load_settings())
    engine = db.init_database(url)
    try:
        with db.read_scope() as session:
            admin = session.exec(select(User).where(User.email == 'bench@example.com')).one()
        took: list[float] = []
        for _ in range(count):
            started = time.monotonic()
            with db.write_scope() as session:
                api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(0))
            took.append(time.monotonic() - started)
            time.sleep(0.1)
        return took
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or '').split('\n\n')[0])
    parser.add_argument('--rotations', type=int, default=50, help='rotations per setup (default 50)')
    parser.add_argument('--connections', type=int, default=16, help='wrk connections in all (default 16)')
    args = parser.parse_args()
    if not bench.WRK:
        raise SystemExit('wrk is needed (apt-get install wrk)')
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit('PostgreSQL is needed (apt-get install postgresql)')
    from services import key_cache

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    temp = Path(tempfile.mkdtemp(prefix='cxt-bench-rot-'))
    server = PostgresServer(bin_dir)
    setups: list[Setup] = []
    try:
        server.start()
        secret = secrets.token_urlsafe(32)
        url = server.create_database()
        envs = [
            child_env(temp / f'app-{n}', bench.free_port(), {'CXT_DATABASE_URL': url, 'CXT_SECRET_KEY': secret})
            for n in range(3)
        ]
        for env in envs:
            Path(env['CXT_DATA_DIR']).mkdir(mode=0o700)
        seed(envs[0])  # organization A (rotated) and its admin
        load_key = second_organization(url, secret)
        setups = [Setup('1 process', envs[:1]), Setup('2 processes', envs[1:])]
        key_cache.start(url)  # this process listens like an app process: its rotations wait for confirmations
        seconds = int(args.rotations * 0.25 + 2)  # wrk takes whole seconds
        print(f'{args.rotations} rotations per setup, wrk {args.connections} connections, {os.cpu_count()} CPUs\n')
        for setup in setups:
            setup.start()
            try:
                setup.load(load_key, 2, args.connections)  # warm-up
                quiet = setup.load(load_key, seconds, args.connections)
                outcome: dict[str, object] = {}

                def load_during(setup: Setup = setup, outcome: dict[str, object] = outcome) -> None:
                    outcome['load'] = setup.load(load_key, seconds, args.connections)

                loader = threading.Thread(target=load_during)
                loader.start()
                time.sleep(1)
                took = rotations(url, secret, args.rotations)
                loader.join()
                during = outcome['load']
                assert isinstance(during, bench.Result)
            finally:
                setup.stop()
            print(
                f'{setup.name:<12} rotation latency median {statistics.median(took) * 1000:6.0f} ms, '
                f'max {max(took) * 1000:6.0f} ms'
            )
            print(
                f'{"":<12} widget API without rotations {quiet.requests_per_second:7.0f} req/s '
                f'p99 {quiet.p99_ms:6.2f} ms; '
                f'during {during.requests_per_second:7.0f} req/s p99 {during.p99_ms:6.2f} ms; '
                f'p99 ratio {during.p99_ms / quiet.p99_ms:.2f}, req/s ratio '
                f'{during.requests_per_second / quiet.requests_per_second:.2f}'
            )
        print(f'\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end of the run')
        return 0
    finally:
        key_cache.stop()
        for setup in setups:
            setup.stop()
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
