"""A throwaway PostgreSQL server for the tests: a real cluster in a temporary directory.

`initdb` and `pg_ctl` refuse to run as root, so as root the cluster is owned
by the `postgres` user and both run through `runuser`. The server listens on
127.0.0.1 on a free port (and a private socket directory), with fsync off:
its data is thrown away when the session ends. Each test gets its own fresh
database with `PostgresServer.database()`.

On a machine without the binaries the tests that need them are skipped, except
under CI (`CI` set), where a missing server is a failure: `.ci/run` installs
Debian's postgresql package when it is missing.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

_counter = itertools.count()


def find_bin() -> Path | None:
    """The directory holding `initdb` and `pg_ctl` ($MASCOPE_PG_BIN, else the newest Debian install)."""
    if env := os.environ.get("MASCOPE_PG_BIN"):
        return Path(env)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway cluster."""

    bin: Path
    root: Path
    port: int
    as_user: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; its URL."""
        # psycopg (the dev extras' postgres driver, which every store on this
        # server needs anyway), in-process: a psql subprocess per test costs more than the test.
        import psycopg

        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a database `database()` made, whoever is still connected to it."""
        name = url.rsplit("/", 1)[-1]
        with contextlib.suppress(Exception):
            import psycopg

            # Each database is a copy of template1 on disk: dropping them as the
            # tests end keeps a session's cluster small and its removal quick.
            with psycopg.connect(self.url(), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                 "-w", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def start(bin_dir: Path) -> PostgresServer:
    """initdb a cluster in a temporary directory and start it on a free loopback port."""
    root = Path(tempfile.mkdtemp(prefix="mascope-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    (root / "sock").mkdir()
    if as_user:
        shutil.chown(root / "sock", "postgres", "postgres")
    server = PostgresServer(bin_dir, root, _free_port(), as_user)
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(server.data), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = (
            f"-p {server.port} -k {root / 'sock'} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(server.data), "-o", options,
             "-l", str(root / "log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    except BaseException as exc:
        log = root / "log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        if isinstance(exc, subprocess.CalledProcessError):
            detail = (exc.stderr or b"").decode(errors="replace")[-2000:] + detail
        server.stop()
        raise RuntimeError(f"could not start PostgreSQL from {bin_dir}: {exc}\n{detail}") from exc
    return server


__all__ = ["PostgresServer", "find_bin", "start"]
