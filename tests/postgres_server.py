"""A throwaway PostgreSQL server on 127.0.0.1 for tests (Debian's binaries; started and stopped by the tests)."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def find_bin_dir() -> Path | None:
    candidates = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix='cxt-pg-'))
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ['runuser', '-u', 'postgres', '--', *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, 'postgres')
        data = self.root / 'data'
        self._run('initdb', '-D', str(data), '-U', 'postgres', '-A', 'trust', '--no-sync')
        self.resume()

    def halt(self) -> None:
        """Stop the server, keeping its data (a restart or an outage; `resume` brings it back on the same port)."""
        self._run('pg_ctl', '-D', str(self.root / 'data'), '-m', 'fast', '-w', 'stop')

    def resume(self) -> None:
        options = f'-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off'
        self._run('pg_ctl', '-D', str(self.root / 'data'), '-o', options, '-l', str(self.root / 'log'), '-w', 'start')

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        name = f'cxt_{uuid.uuid4().hex[:12]}'
        with psycopg.connect(
            host='127.0.0.1', port=self.port, user='postgres', dbname='postgres', autocommit=True
        ) as connection:
            connection.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
        return f'postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}'

    def stop(self) -> None:
        try:
            self._run('pg_ctl', '-D', str(self.root / 'data'), '-m', 'immediate', '-w', 'stop')
        finally:
            time.sleep(0.1)
            shutil.rmtree(self.root, ignore_errors=True)
