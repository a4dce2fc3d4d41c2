"""A throwaway PostgreSQL 15 server for the test session: initdb into a temporary directory as
the `postgres` system user (we may run as root, which PostgreSQL refuses), a Unix socket in
that directory (no TCP port), trust authentication, fsync off; stopped and removed at the end.
Each test gets its own database on it."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
_names = itertools.count()


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PgServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fundbot-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", str(self.data), "-U",
                                     "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       **run)
        options = (f"-k {self.dir} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                                     "-l", str(self.dir / "log"), "-w", "start"]), **run)
        self.admin = self.url("postgres")

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={self.dir}"

    def create_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                                     "-w", "stop"]), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_database(server: PgServer) -> Iterator[str]:
    """A fresh database's URL for one test, dropped afterwards."""
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)
