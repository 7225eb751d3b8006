"""Writes per second on PostgreSQL with one and with two processes: rotations, invitations, sign-ins.

Run from the repository root:

    uv run bench/pg_writes.py                  # 5 s per operation and setup, 4 threads per process
    uv run bench/pg_writes.py --seconds 3 --threads 2

What it does: starts a throwaway PostgreSQL server (tests/postgres_server.py) and one database, then, per operation,
runs it for `--seconds` in one worker process and then in two at once (spawned Python processes, each as an app
process would run the services: `write_scope` per step, the key cache listening, so a rotation waits for the other
process's confirmation). Each worker runs `--threads` threads, each on an organization of its own (different
organizations' writes have nothing to wait for but each other's locks). Operations:
- rotation: `api_keys.rotate_key`, immediate;
- invitation: `invitations.invite_member` of a new address;
- sign-in: the sign-in page's three steps (`begin_sign_in`, the password check, `finish_sign_in`), bcrypt at cost 4
  here so the database's part is what is measured (cost 12, the product's, takes ~0.25 s of CPU per sign-in).
Prints operations per second per setup and the ratio 2 processes / 1 process, with the load average (two cores
shared by the workers and PostgreSQL cannot double anything; the ratio shows whether the writes wait on each other).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.factories import acting  # noqa: E402
from tests.postgres_server import PostgresServer, find_bin_dir  # noqa: E402

OPERATIONS = ('rotation', 'invitation', 'sign-in')
PASSWORD = 'bench password 123'


def worker(url: str, operation: str, seconds: float, threads: int, tag: str, go: Any, out: Any) -> None:
    """One process: once set up it says so on `out`, waits for `go`, then `threads` threads do `operation` for
    `seconds`; puts its count into `out`."""
    sys.path.insert(0, str(ROOT))
    os.environ['CXT_DATABASE_URL'] = url
    os.environ['CXT_SECRET_KEY'] = 'bench-secret-0123456789abcdefghijkl'
    from services import config, db, key_cache
    from services.identity import auth, invitations
    from services.keys import api_keys
    from tests.factories import make_organization, make_user, sign_in

    auth.BCRYPT_ROUNDS = 4
    invitations.DAILY_LIMIT = 10**9  # 50 a day per organization would end the run after its first 200
    config.configure(config.load_settings())
    engine = db.init_database(url)
    key_cache.start(url)
    admins = []
    for number in range(threads):
        with db.write_scope() as session:
            admin = make_user(
                session,
                organization=make_organization(session, name=f'{tag} {number}'),
                email=f'{tag}-{number}@example.com',
                password=PASSWORD,
            )
            api_keys.generate_key(session=session, actor=admin)
        admins.append(admin)
    counts = [0] * threads
    out.put('ready')
    go.wait()
    deadline = time.monotonic() + seconds

    def run(number: int) -> None:
        admin = admins[number]
        while time.monotonic() < deadline:
            if operation == 'rotation':
                with db.write_scope() as session:
                    api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(0))
            elif operation == 'invitation':
                with db.write_scope() as session:
                    email = f'{tag}-{number}-{counts[number]}@example.com'
                    invitations.invite_member(session=session, actor=admin, email=email, role='member')
            else:
                sign_in(admin.email, PASSWORD)
            counts[number] += 1

    workers = [threading.Thread(target=run, args=(number,)) for number in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    key_cache.stop()
    engine.dispose()
    out.put(sum(counts))


def measure(url: str, operation: str, processes: int, seconds: float, threads: int, round_tag: str) -> float:
    context = multiprocessing.get_context('spawn')
    out, go = context.Queue(), context.Event()
    children = [
        context.Process(target=worker, args=(url, operation, seconds, threads, f'{round_tag}-p{index}', go, out))
        for index in range(processes)
    ]
    for child in children:
        child.start()
    for _ in children:
        assert out.get(timeout=180) == 'ready'
    time.sleep(2)  # every worker listening, and heard by the others, for longer than key_cache.SEEN_WINDOW
    go.set()
    total = sum(out.get(timeout=180) for _ in children)
    for child in children:
        child.join(timeout=30)
    return total / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or '').split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=5, help='length of each run (default 5)')
    parser.add_argument('--threads', type=int, default=4, help='threads per process (default 4)')
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit('PostgreSQL is needed (apt-get install postgresql)')
    server = PostgresServer(bin_dir)
    try:
        server.start()
        url = server.create_database()
        from services import db

        db.init_database(url).dispose()  # migrated once, before the workers
        print(f'{args.seconds:g} s per run, {args.threads} threads per process, {os.cpu_count()} CPUs\n')
        for operation in OPERATIONS:
            one = measure(url, operation, 1, args.seconds, args.threads, f'{operation}-1')
            two = measure(url, operation, 2, args.seconds, args.threads, f'{operation}-2')
            print(
                f'{operation:<11} 1 process {one:8.1f}/s   2 processes {two:8.1f}/s   ratio 2/1 {two / one:.2f}'
                f'   (load average {os.getloadavg()[0]:.1f})'
            )
        return 0
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
