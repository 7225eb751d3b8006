"""Widget API throughput on PostgreSQL with one and with two app processes, against one process on SQLite.

Run from the repository root:

    uv run bench/pg_processes.py                        # 3 rounds x 10 s, 32 connections in all
    uv run bench/pg_processes.py --seconds 5 --rounds 1

What it does: starts a throwaway PostgreSQL server on 127.0.0.1 (tests/postgres_server.py, Debian's binaries), seeds
an organization, its admin and an API key through the services, once in an SQLite data dir and once in a fresh
PostgreSQL database, and starts `main.py` three ways: one process on SQLite (the baseline), one process on
PostgreSQL, and two processes on the same PostgreSQL database (each its own data dir, one shared CXT_SECRET_KEY,
as deploy/ runs them). Each round loads `GET /api/v1/organization` (`Authorization: Bearer <key>`) with wrk
(bench/api_throughput.py's runner; 1 thread per wrk): for two processes, two wrk at once, one per process, with half
the connections each, and their req/s added up, which is what a round-robin balancer in front of them would see.
Prints req/s and p99 per round and setup, the medians, and the ratios: PostgreSQL 1 process / SQLite, PostgreSQL
2 processes / SQLite and 2 processes / 1 process. Every process it started is stopped and the temp dirs removed.

On a machine with fewer cores than processes (app processes + wrk + PostgreSQL), the two processes share the same
CPUs, so the 2/1 ratio says more about the cores than about the app; the load average is printed with the result.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

import api_throughput as bench  # noqa: E402  (bench/api_throughput.py: the seeding, wrk runner, process control)

from tests.postgres_server import PostgresServer, find_bin_dir  # noqa: E402


def child_env(data_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith('CXT_')
        and name not in {'PYTEST_CURRENT_TEST', 'NICEGUI_USER_SIMULATION', 'NICEGUI_STORAGE_PATH'}
    }
    env.update(CXT_DATA_DIR=str(data_dir), CXT_HOST='127.0.0.1', CXT_PORT=str(port), PYTHONUNBUFFERED='1', **extra)
    return env


def seed(env: dict[str, str]) -> str:
    """The organization, admin and key in `env`'s database; returns the key."""
    previous = Path.cwd()
    os.chdir(env['CXT_DATA_DIR'])
    try:
        with bench.child_environment(env):
            return bench.seed_database()
    finally:
        os.chdir(previous)


class Setup:
    """One or more app processes serving one database, loaded together."""

    def __init__(self, name: str, envs: list[dict[str, str]]) -> None:
        self.name = name
        self.envs = envs
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls = [f'http://127.0.0.1:{env["CXT_PORT"]}/api/v1/organization' for env in envs]

    def start(self) -> None:
        for env in self.envs:
            data_dir = Path(env['CXT_DATA_DIR'])
            log = data_dir / 'app.log'
            process = bench.start([sys.executable, str(ROOT / 'main.py')], env, data_dir, log)
            self.processes.append(process)
        for env, process in zip(self.envs, self.processes, strict=True):
            log = Path(env['CXT_DATA_DIR']) / 'app.log'
            bench.wait_ready(f'http://127.0.0.1:{env["CXT_PORT"]}/api/health', process, log)

    def stop(self) -> None:
        for process in self.processes:
            bench.stop(process)
        self.processes = []

    def load(self, key: str, seconds: float, connections: int) -> bench.Result:
        """All processes loaded at once (connections split between them); req/s summed, p99 the worst."""
        auth = {'Authorization': f'Bearer {key}'}
        share = max(1, connections // len(self.urls))
        with ThreadPoolExecutor(len(self.urls)) as pool:
            results = list(pool.map(lambda url: bench.load(url, auth, seconds, share, 0), self.urls))
        return bench.Result(
            requests_per_second=sum(r.requests_per_second for r in results),
            p99_ms=max(r.p99_ms for r in results),
            errors=sum(r.errors for r in results),
            requests=sum(r.requests for r in results),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or '').split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10, help='length of each load run (default 10)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds, each loads every setup once (default 3)')
    parser.add_argument('--connections', type=int, default=32, help='keep-alive connections in all (default 32)')
    parser.add_argument('--warmup', type=float, default=2, help='unreported warm-up load per setup (default 2 s)')
    args = parser.parse_args()
    if not bench.WRK:
        raise SystemExit('wrk is needed (apt-get install wrk)')
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit('PostgreSQL is needed (apt-get install postgresql)')

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    temp = Path(tempfile.mkdtemp(prefix='cxt-bench-pg-'))
    server = PostgresServer(bin_dir)
    setups: list[Setup] = []
    try:
        server.start()
        secret = secrets.token_urlsafe(32)  # processes sharing a database share its secret
        sqlite_env = child_env(temp / 'sqlite', bench.free_port(), {})
        pg_url = server.create_database()
        pg_one = child_env(temp / 'pg-1', bench.free_port(), {'CXT_DATABASE_URL': pg_url, 'CXT_SECRET_KEY': secret})
        pg_two = [
            child_env(temp / f'pg-2{side}', bench.free_port(), {'CXT_DATABASE_URL': pg_url, 'CXT_SECRET_KEY': secret})
            for side in 'ab'
        ]
        for env in (sqlite_env, pg_one, *pg_two):
            Path(env['CXT_DATA_DIR']).mkdir(mode=0o700)
        sqlite_key, pg_key = seed(sqlite_env), seed(pg_one)
        keys = {'SQLite, 1 process': sqlite_key, 'PostgreSQL, 1 process': pg_key, 'PostgreSQL, 2 processes': pg_key}
        setups = [
            Setup('SQLite, 1 process', [sqlite_env]),
            Setup('PostgreSQL, 1 process', [pg_one]),
            Setup('PostgreSQL, 2 processes', pg_two),
        ]
        print(
            f'load: wrk ({bench.WRK}) -t1 per process, {args.connections} connections in all, {args.seconds:g} s, '
            f'{args.rounds} rounds, {os.cpu_count()} CPUs; PostgreSQL at 127.0.0.1:{server.port}\n'
        )
        results: dict[str, list[bench.Result]] = {setup.name: [] for setup in setups}
        # One setup runs at a time (the others stopped), so no setup's idle processes take CPU from another's; the
        # setups take turns within each round, so a change in the machine's load touches all of them alike.
        for round_number in range(1, args.rounds + 1):
            for setup in setups:
                setup.start()
                try:
                    if args.warmup > 0:  # every round: each round starts its processes afresh
                        setup.load(keys[setup.name], args.warmup, args.connections)
                    result = setup.load(keys[setup.name], args.seconds, args.connections)
                finally:
                    setup.stop()
                results[setup.name].append(result)
                failed = f'  errors {result.errors}' if result.errors else ''
                print(
                    f'round {round_number}  {setup.name:<24} {result.requests_per_second:>8.0f} req/s  '
                    f'p99 {result.p99_ms:>7.2f} ms{failed}'
                )
        medians = {name: statistics.median(r.requests_per_second for r in rs) for name, rs in results.items()}
        p99s = {name: statistics.median(r.p99_ms for r in rs) for name, rs in results.items()}
        print()
        for name in medians:
            print(f'median  {name:<24} {medians[name]:>8.0f} req/s  p99 {p99s[name]:>7.2f} ms')
        sqlite, one = medians['SQLite, 1 process'], medians['PostgreSQL, 1 process']
        two = medians['PostgreSQL, 2 processes']
        print(
            f'\nratios: PostgreSQL 1 process / SQLite {one / sqlite:.2f}, PostgreSQL 2 processes / SQLite '
            f'{two / sqlite:.2f}, PostgreSQL 2 processes / 1 process {two / one:.2f}'
        )
        load_average = os.getloadavg()[0]
        print(f'load average {load_average:.1f} on {os.cpu_count()} CPUs at the end of the run')
        errors = sum(r.errors for rs in results.values() for r in rs)
        return 1 if errors else 0
    finally:
        for setup in setups:
            setup.stop()
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
