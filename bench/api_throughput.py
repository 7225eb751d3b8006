"""Widget API throughput: the real app's `GET /api/v1/organization` against a bare FastAPI `/ping`.

Run from the repository root:

    uv run bench/api_throughput.py                      # 3 rounds x 10 s, 32 connections
    uv run bench/api_throughput.py --seconds 5 --rounds 1 --connections 16
    uv run bench/api_throughput.py --metrics-on-off     # what counting costs: the app with metrics on against off

With `--metrics-on-off` it starts the app twice (two temp data dirs, each seeded the same way): once without
CXT_METRICS_TOKEN, once with it (the request middleware then counts every request by route template and times it),
loads them in turn, round after round, and prints req/s and the server's CPU time per request for both, with the
ratio on/off (target >= 0.97 for req/s; the CPU ratio is the steadier figure on a busy machine).

What it does: makes a temp data dir, creates an organization, its admin and an API key in that dir's SQLite
database through the services, starts `main.py` on a free 127.0.0.1 port (CXT_DATA_DIR pointing there, so the
app sees the same database and generated secret) and, alongside it, a bare FastAPI app with one `/ping` route
(uvicorn, one worker). Each round loads the app (with `Authorization: Bearer <key>`) then `/ping` with wrk
(1 thread, --latency; an asyncio keep-alive client if wrk is missing). Prints req/s and p99 per round, the
medians and the ratio app/bare. Target: ratio >= 0.8 and app p99 <= 10 ms (exit code 1 if missed).
The app counts every widget API request per key (services/keys/key_traffic.py) as it always does: at the end the app is
stopped first, so its shutdown flush writes the last counts, and the bench prints how many requests the database
recorded for the key against how many the load tools saw answered (the app may count a few more: requests still
in flight when a load run ended).
Every process it started is stopped at the end, and the temp dir is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRK = shutil.which('wrk') or ('/usr/bin/wrk' if Path('/usr/bin/wrk').exists() else None)
TARGET_RATIO = 0.8
TARGET_P99_MS = 10.0


@dataclass
class Result:
    requests_per_second: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us_per_request: float = float('nan')  # the server's CPU time per request: steadier on a busy machine


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc; NaN where there is no /proc."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rpartition(')')[2].split()
    except OSError:
        return float('nan')
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


# ---------------------------------------------------------------------------------------------------------------
# The bare app (run in a child process: `api_throughput.py --serve-bare PORT`)


def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get('/ping')
    async def ping() -> dict[str, str]:
        return {'ping': 'pong'}

    # The same server settings as main.py's uvicorn.run, so the ratio measures only the app's own work.
    uvicorn.run(app, host='127.0.0.1', port=port, log_level='warning', access_log=False, proxy_headers=True)


# ---------------------------------------------------------------------------------------------------------------
# Setup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def seed_database() -> str:
    """Organization + admin + API key in CXT_DATA_DIR's database, through the services; returns the key."""
    sys.path.insert(0, str(ROOT))
    from services import config, db
    from services.identity import auth
    from services.keys import api_keys
    from services.team import organizations

    settings = config.load_settings()
    config.configure(settings)
    engine = db.init_database(settings.resolved_database_url)
    try:
        with db.write_scope() as session:
            admin = auth.create_first_admin(
                session=session,
                organization_name='Bench Org',
                name='Bench Admin',
                email='bench@example.com',
                password_hash=auth.new_password_hash('bench password 123'),
            )
            organizations.update_subdomains(
                session=session, actor=admin, subdomain='acme', sandbox_subdomain='acme-sandbox'
            )
            return api_keys.generate_key(session=session, actor=admin)
    finally:
        engine.dispose()


def counted_requests() -> tuple[int, int]:
    """(accepted, refused) requests the app recorded in CXT_DATA_DIR's database (services/keys/key_traffic.py)."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import text

    from services import config, db

    engine = db.make_engine(config.load_settings().resolved_database_url)
    try:
        with engine.connect() as connection:
            statement = text('SELECT coalesce(sum(accepted), 0), coalesce(sum(refused), 0) FROM key_traffic')
            accepted, refused = connection.execute(statement).one()
            return int(accepted), int(refused)
    finally:
        engine.dispose()


@contextlib.contextmanager
def child_environment(env: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by the children's for the block (no .env from elsewhere)."""
    saved_environ = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open('wb') as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's own process group (it was started in a new session), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f'{url}: the server exited with {process.returncode}:\n{log.read_text()[-3000:]}')
        with contextlib.suppress(OSError):
            if get(url)[0] == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f'{url}: not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}')


# ---------------------------------------------------------------------------------------------------------------
# Load


_LATENCY_UNITS = {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60_000.0}


def _wrk_line(pattern: str, output: str, flags: int = 0) -> re.Match[str]:
    match = re.search(pattern, output, flags)
    if match is None:
        raise SystemExit(f'wrk printed no line matching {pattern!r}:\n{output}')
    return match


def run_wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> Result:
    command = [WRK, '-t1', f'-c{connections}', f'-d{seconds:g}s', '--latency', '--timeout', '5s']
    for name, value in headers.items():
        command += ['-H', f'{name}: {value}']
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(_wrk_line(r'Requests/sec:\s+([\d.]+)', output).group(1))
    requests = int(_wrk_line(r'(\d+) requests in', output).group(1))
    value, unit = _wrk_line(r'^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$', output, re.MULTILINE).groups()
    errors = 0
    for pattern in (r'Non-2xx or 3xx responses:\s+(\d+)', r'Socket errors:.*?timeout (\d+)'):
        if match := re.search(pattern, output):
            errors += int(match.group(1))
    if match := re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+)', output):
        errors += sum(int(n) for n in match.groups())
    return Result(rps, float(value) * _LATENCY_UNITS[unit], errors, requests)


async def _asyncio_load(url: str, headers: dict[str, str], seconds: float, connections: int) -> Result:
    """Keep-alive HTTP/1.1 GETs on `connections` sockets; a fallback when wrk is missing (it costs more CPU)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    lines = [f'GET {parts.path} HTTP/1.1', f'Host: {parts.netloc}', *(f'{k}: {v}' for k, v in headers.items())]
    request = ('\r\n'.join(lines) + '\r\n\r\n').encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b'\r\n\r\n')
                status = int(head.split(b' ', 2)[1])
                length_header = re.search(rb'(?i)content-length:\s*(\d+)', head)
                if length_header is None:
                    raise ConnectionError(f'a response without Content-Length: {head!r}')
                length = int(length_header.group(1))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not 200 <= status < 400:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float('nan')
    return Result(len(latencies) / elapsed, p99 * 1000, errors, len(latencies))


def load(url: str, headers: dict[str, str], seconds: float, connections: int, server_pid: int) -> Result:
    cpu_before = cpu_seconds(server_pid)
    if WRK:
        result = run_wrk(url, headers, seconds, connections)
    else:
        result = asyncio.run(_asyncio_load(url, headers, seconds, connections))
    if result.requests:
        result.cpu_us_per_request = (cpu_seconds(server_pid) - cpu_before) / result.requests * 1e6
    return result


# ---------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or '').split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10, help='length of each load run (default 10)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds, each loads the app then /ping (default 3)')
    parser.add_argument('--connections', type=int, default=32, help='concurrent keep-alive connections (default 32)')
    parser.add_argument('--warmup', type=float, default=2, help='unreported warm-up load per server (default 2 s)')
    parser.add_argument('--serve-bare', type=int, metavar='PORT', help=argparse.SUPPRESS)
    parser.add_argument('--metrics-on-off', action='store_true', help='compare the app with metrics on and off')
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if args.metrics_on_off:
        return compare_metrics(args)

    # A SIGTERM to the bench still stops its servers (the finally below runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    data_dir = Path(tempfile.mkdtemp(prefix='cxt-bench-'))
    app_port, bare_port = free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith('CXT_')
        and name not in {'PYTEST_CURRENT_TEST', 'NICEGUI_USER_SIMULATION', 'NICEGUI_STORAGE_PATH'}
    }
    env.update(CXT_DATA_DIR=str(data_dir), CXT_HOST='127.0.0.1', CXT_PORT=str(app_port), PYTHONUNBUFFERED='1')
    processes: list[subprocess.Popen[bytes]] = []
    previous_cwd = Path.cwd()
    try:
        # Seed in the temp dir with the child's environment (no .env from elsewhere, same secret file and database).
        os.chdir(data_dir)
        with child_environment(env):
            key = seed_database()

        app_log, bare_log = data_dir / 'app.log', data_dir / 'bare.log'
        processes.append(start([sys.executable, str(ROOT / 'main.py')], env, data_dir, app_log))
        processes.append(
            start(
                [sys.executable, str(Path(__file__).resolve()), '--serve-bare', str(bare_port)], env, data_dir, bare_log
            )
        )
        app_url = f'http://127.0.0.1:{app_port}/api/v1/organization'
        bare_url = f'http://127.0.0.1:{bare_port}/ping'
        wait_ready(f'http://127.0.0.1:{app_port}/api/health', processes[0], app_log)
        wait_ready(bare_url, processes[1], bare_log)

        auth = {'Authorization': f'Bearer {key}'}
        status, body = get(app_url, auth)
        if status != 200:
            raise SystemExit(f'the app answered {status} {body[:200]!r}; expected 200 for the seeded key')
        print(f'app  {app_url}  -> {json.loads(body)}')
        print(f'bare {bare_url}  -> {json.loads(get(bare_url)[1])}')
        tool = f'wrk ({WRK}) -t1' if WRK else 'asyncio client (wrk not found)'
        print(
            f'load: {tool}, {args.connections} connections, {args.seconds:g} s, {args.rounds} rounds, '
            f'{os.cpu_count()} CPUs\n'
        )

        app_pid, bare_pid = processes[0].pid, processes[1].pid
        answered = 1  # the app's requests the load tools saw answered, from the check above on
        if args.warmup > 0:
            answered += load(app_url, auth, args.warmup, args.connections, app_pid).requests
            load(bare_url, {}, args.warmup, args.connections, bare_pid)

        app_results: list[Result] = []
        bare_results: list[Result] = []
        print(
            f'{"round":>6} {"app req/s":>10} {"app p99":>9} {"bare req/s":>10} {"bare p99":>9} {"ratio":>6}'
            f'   server CPU µs/req: {"app":>5} {"bare":>5} {"ratio":>5}'
        )

        def row(label: str, a: Result, b: Result) -> str:
            return (
                f'{label:>6} {a.requests_per_second:>10.0f} {a.p99_ms:>7.2f}ms {b.requests_per_second:>10.0f} '
                f'{b.p99_ms:>7.2f}ms {a.requests_per_second / b.requests_per_second:>6.2f}'
                f'   {"":>18} {a.cpu_us_per_request:>5.0f} {b.cpu_us_per_request:>5.0f} '
                f'{b.cpu_us_per_request / a.cpu_us_per_request:>5.2f}'
            )

        for round_number in range(1, args.rounds + 1):
            app_results.append(load(app_url, auth, args.seconds, args.connections, app_pid))
            answered += app_results[-1].requests
            bare_results.append(load(bare_url, {}, args.seconds, args.connections, bare_pid))
            a, b = app_results[-1], bare_results[-1]
            failed = f'  errors app={a.errors} bare={b.errors}' if a.errors or b.errors else ''
            print(row(str(round_number), a, b) + failed)

        def median(results: list[Result]) -> Result:
            return Result(
                *(
                    statistics.median(getattr(r, name) for r in results)
                    for name in ('requests_per_second', 'p99_ms', 'errors', 'requests', 'cpu_us_per_request')
                )
            )

        app_median, bare_median = median(app_results), median(bare_results)
        print(row('median', app_median, bare_median))
        app_rps, app_p99, bare_rps = app_median.requests_per_second, app_median.p99_ms, bare_median.requests_per_second
        ratio = app_rps / bare_rps
        errors = sum(r.errors for r in app_results + bare_results)
        ok = ratio >= TARGET_RATIO and app_p99 <= TARGET_P99_MS and errors == 0
        print(
            f'\nratio app/bare {ratio:.2f} (target >= {TARGET_RATIO}), app p99 {app_p99:.2f} ms '
            f'(target <= {TARGET_P99_MS:g} ms), errors {errors}: {"PASS" if ok else "MISS"}'
        )
        load_average = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
        if load_average > (os.cpu_count() or 1) * 0.75 + 1:
            print(
                f'note: load average {load_average:.1f} on {os.cpu_count()} CPUs: other work competed with this run; '
                'the server-CPU-per-request ratio is the steadier figure'
            )
        for process, log in zip(processes, (app_log, bare_log), strict=True):
            if process.poll() is not None:
                print(f'warning: a server exited early:\n{log.read_text()[-2000:]}')
        stop(processes[0])  # its shutdown flush writes the counts still in memory
        with child_environment(env):
            accepted, refused = counted_requests()
        print(
            f'counting on: the app recorded {accepted:,} accepted and {refused:,} refused requests for the key; '
            f'the load tools saw {answered:,} answered'
        )
        return 0 if ok else 1
    finally:
        for process in processes:
            stop(process)
        os.chdir(previous_cwd)
        shutil.rmtree(data_dir, ignore_errors=True)


TARGET_METRICS_RATIO = 0.97


def compare_metrics(args: argparse.Namespace) -> int:
    """The widget API with metrics off and on (CXT_METRICS_TOKEN unset / set), loaded in turn; prints the ratio."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base_env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith('CXT_')
        and name not in {'PYTEST_CURRENT_TEST', 'NICEGUI_USER_SIMULATION', 'NICEGUI_STORAGE_PATH'}
    }
    token = 'bench-metrics-token-0123456789'
    servers: dict[str, tuple[subprocess.Popen[bytes], str, dict[str, str]]] = {}
    data_dirs: list[Path] = []
    previous_cwd = Path.cwd()
    try:
        for label in ('off', 'on'):
            data_dir = Path(tempfile.mkdtemp(prefix=f'cxt-bench-metrics-{label}-'))
            data_dirs.append(data_dir)
            port = free_port()
            env = {**base_env, 'CXT_DATA_DIR': str(data_dir), 'CXT_HOST': '127.0.0.1', 'CXT_PORT': str(port)}
            env['PYTHONUNBUFFERED'] = '1'
            if label == 'on':
                env['CXT_METRICS_TOKEN'] = token
            os.chdir(data_dir)
            with child_environment(env):
                key = seed_database()
            log = data_dir / 'app.log'
            process = start([sys.executable, str(ROOT / 'main.py')], env, data_dir, log)
            wait_ready(f'http://127.0.0.1:{port}/api/health', process, log)
            servers[label] = (
                process,
                f'http://127.0.0.1:{port}/api/v1/organization',
                {'Authorization': f'Bearer {key}'},
            )
        status, _ = get(
            servers['on'][1].replace('/api/v1/organization', '/metrics'), {'Authorization': f'Bearer {token}'}
        )
        if status != 200:
            raise SystemExit(f'metrics on: /metrics answered {status}, expected 200')
        tool = f'wrk ({WRK}) -t1' if WRK else 'asyncio client (wrk not found)'
        print(f'load: {tool}, {args.connections} connections, {args.seconds:g} s, {args.rounds} rounds, metrics off/on')
        for process, url, headers in servers.values():
            if args.warmup > 0:
                load(url, headers, args.warmup, args.connections, process.pid)
        results: dict[str, list[Result]] = {'off': [], 'on': []}
        print(
            f'{"round":>6} {"off req/s":>10} {"on req/s":>10} {"ratio":>6}'
            f'   CPU µs/req: {"off":>5} {"on":>5} {"ratio":>5}'
        )

        def row(label: str, off: Result, on: Result) -> str:
            return (
                f'{label:>6} {off.requests_per_second:>10.0f} {on.requests_per_second:>10.0f} '
                f'{on.requests_per_second / off.requests_per_second:>6.3f}   {"":>11} {off.cpu_us_per_request:>5.0f} '
                f'{on.cpu_us_per_request:>5.0f} {off.cpu_us_per_request / on.cpu_us_per_request:>5.3f}'
            )

        for round_number in range(1, args.rounds + 1):
            # Alternate which goes first, so neither always meets the same moment of a busy machine.
            order = ('off', 'on') if round_number % 2 else ('on', 'off')
            for label in order:
                process, url, headers = servers[label]
                results[label].append(load(url, headers, args.seconds, args.connections, process.pid))
            print(row(str(round_number), results['off'][-1], results['on'][-1]))

        def median(values: list[Result]) -> Result:
            return Result(
                statistics.median(r.requests_per_second for r in values),
                statistics.median(r.p99_ms for r in values),
                sum(r.errors for r in values),
                sum(r.requests for r in values),
                statistics.median(r.cpu_us_per_request for r in values),
            )

        off, on = median(results['off']), median(results['on'])
        print(row('median', off, on))
        ratio = on.requests_per_second / off.requests_per_second
        cpu_ratio = off.cpu_us_per_request / on.cpu_us_per_request
        ok = ratio >= TARGET_METRICS_RATIO and off.errors == on.errors == 0
        print(
            f'\nratio metrics on/off: req/s {ratio:.3f}, CPU per request {cpu_ratio:.3f} '
            f'(target >= {TARGET_METRICS_RATIO}), errors {off.errors + on.errors}: {"PASS" if ok else "MISS"}'
        )
        load_average = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
        if load_average > (os.cpu_count() or 1) * 0.75 + 1:
            print(f'note: load average {load_average:.1f} on {os.cpu_count()} CPUs: other work competed with this run')
        return 0 if ok else 1
    finally:
        for process, _, _ in servers.values():
            stop(process)
        os.chdir(previous_cwd)
        for data_dir in data_dirs:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
