"""A private, throwaway PostgreSQL cluster on a free loopback port, for a suite that
restarts or kills it.

The shared PostgreSQL (5432) is never restarted: a stack under a database fault talks to
one of these instead. `initdb` makes a new cluster in a temporary directory (fsync off:
nothing here has to survive the machine; every commit still reaches the WAL before it is
acknowledged, so a crash of PostgreSQL itself loses none), the postmaster listens on
127.0.0.1 only, and it is told to shut down when the thread that started it ends, so a
test run killed before its teardown does not leave it running.

A restart is what `pg_ctl restart -m MODE` does (stop in that mode, start again on the same
data directory and port), done as `pg_ctl stop` and a postmaster of our own, since the
one `pg_ctl restart` starts is detached from us and would outlive the tests.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import psycopg

from tests.support.stack import free_port

StopMode = Literal["smart", "fast", "immediate"]

# PostgreSQL refuses to run as root: as root, the cluster belongs to this account.
SERVICE_USER = "postgres"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent  # the newest installed major version
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    def __init__(self) -> None:
        self.bin_dir = _bin_dir()
        self.port = free_port()
        self.restarts = 0
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._user = pwd.getpwnam(SERVICE_USER) if os.geteuid() == 0 else None

    @staticmethod
    def available() -> bool:
        if _bin_dir() is None:
            return False
        if os.geteuid() != 0:
            return True
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return False
        return True

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None, "not initialised"
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None, "not initialised"
        return self.workdir / "postgres.log"

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _run(self, *argv: str, timeout: float = 60.0) -> None:
        """A PostgreSQL tool, as the cluster's owner."""
        assert self.bin_dir is not None
        result = subprocess.run(
            [str(self.bin_dir / argv[0]), *argv[1:]],
            capture_output=True,
            timeout=timeout,
            **self._as_owner(),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}"
            )

    def _as_owner(self) -> dict[str, object]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def init(self) -> PostgresServer:
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL's initdb is not installed")
        # Not under pytest's tmp dir: its parents are private to root, and the cluster's
        # owner must reach the data directory.
        self.workdir = Path(tempfile.mkdtemp(prefix="recovery-pg-"))
        if self._user is not None:
            os.chown(self.workdir, self._user.pw_uid, self._user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        return self

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """The postmaster, ready for connections. After a crash (SIGKILL, `-m immediate`)
        it first replays its WAL; after a SIGKILL it may refuse to start while the old
        backends still hold its shared memory, and is started again until they are gone."""
        if self.workdir is None:
            self.init()
        assert self.bin_dir is not None
        deadline = time.monotonic() + timeout
        while True:
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [
                        str(self.bin_dir / "postgres"),
                        "-D",
                        str(self.data_dir),
                        "-c",
                        f"port={self.port}",
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"unix_socket_directories={self.workdir}",
                        # No flush to disk: a crash of the machine may lose the cluster,
                        # which is thrown away anyway. A crash of PostgreSQL loses nothing
                        # (the WAL is in the OS's cache). synchronous_commit stays on: off,
                        # an immediate shutdown loses the last commits it acknowledged, and
                        # the suite saw a reply routed, texted, then routed and texted again.
                        "-c",
                        "fsync=off",
                        # Two web processes and two 20-thread workers, each with its pool.
                        "-c",
                        "max_connections=300",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_shut_down_with_parent,
                    **self._as_owner(),  # type: ignore[arg-type]
                )
            if self._wait_ready(deadline):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")
            time.sleep(0.2)  # it exited: a previous postmaster's backends still linger

    def _wait_ready(self, deadline: float) -> bool:
        """True once it answers a query; False if the postmaster exited first."""
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with psycopg.connect(self.url(driver="postgresql"), connect_timeout=1) as conn:
                    conn.execute("SELECT 1")
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not become ready:\n{self.log_tail()}")

    def stop(self, mode: StopMode = "fast", timeout: float = 60.0) -> None:
        """`pg_ctl stop -m MODE`: smart waits for the clients; fast rolls back their
        transactions and closes their connections; immediate kills every backend without a
        checkpoint, so the next start is a crash recovery."""
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", timeout=timeout)
        process.wait(timeout)
        self._process = None

    def kill(self) -> None:
        """SIGKILL the postmaster alone: its backends find it gone and exit on their own."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def restart(self, mode: StopMode = "fast", down_s: float = 0.0) -> float:
        """`pg_ctl restart -m MODE`; returns how long the database was away, in seconds."""
        began = time.monotonic()
        self.stop(mode)
        if down_s:
            time.sleep(down_s)
        self.start()
        self.restarts += 1
        return time.monotonic() - began

    def kill_and_start(self, down_s: float = 0.0) -> float:
        """kill -9 of the postmaster, then a start; returns how long it was away."""
        began = time.monotonic()
        self.kill()
        if down_s:
            time.sleep(down_s)
        self.start()
        self.restarts += 1
        return time.monotonic() - began

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, chars: int = 5000) -> str:
        if self.workdir is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def destroy(self) -> None:
        """Stop it (immediately: nothing here is kept) and remove the cluster."""
        try:
            if self._process is not None and self._process.poll() is None:
                self.stop("immediate")
        finally:
            self.kill()
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()


_PR_SET_PDEATHSIG = 1


def _shut_down_with_parent() -> None:
    """In the postmaster, before exec and after the switch to the cluster's owner (a
    change of user clears it): SIGQUIT, an immediate shutdown that takes its backends with
    it, when the thread that started it goes (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)
