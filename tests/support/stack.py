"""The production shape on one machine, for integration tests and benchmarks.

gunicorn serving the app, a Celery worker and Celery beat, each a real process with its
own environment, logging to files under `var_dir`. Nothing here is faked: the processes
are the ones the Procfile runs.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.conftest import PHI_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class StackConfig:
    database_url: str
    redis_url: str
    var_dir: Path
    practices_file: Path
    twilio_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str
    webhook_secret: str
    web_workers: int = 2
    web_threads: int = 4
    worker_concurrency: int = 4
    sweep_interval_s: float = 0.5
    sweep_grace_s: float = 1.0
    beat: bool = True
    # A file whose content (seconds) shifts every process's clock: tests drive time.
    clock_file: Path | None = None
    follow_up_interval_s: float = 60.0
    extra_env: dict[str, str] = field(default_factory=dict)
    # What to serve and run: the product by default; benchmarks swap in their baselines.
    web_app: str = "recovery.web:create_app()"
    web_extra_args: list[str] = field(default_factory=list)
    # None: the product's `recovery celery`; a module name: `celery -A` that module
    # (the bench's no-op worker).
    celery_app: str | None = None
    worker_loglevel: str = "INFO"
    worker_pool: str = "threads"  # as the Procfile
    worker_queues: str = "celery,periodic"  # as the Procfile: texts and periodic jobs
    worker_extra_args: list[str] = field(default_factory=list)
    worker_nice: int = 0  # the Procfile's is 10: the web's answers come first
    health_path: str = "/healthz"


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self._argv: dict[str, list[str]] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a deliberate stop is never mistaken for a crash
        self._supervisor: threading.Thread | None = None
        config.var_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_dir = config.var_dir / "prometheus"
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir()

    @property
    def env(self) -> dict[str, str]:
        c = self.config
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        return {
            **keep,
            "DATABASE_URL": c.database_url,
            "REDIS_URL": c.redis_url,
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": c.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": c.twilio_auth_token,
            "TWILIO_API_BASE_URL": c.twilio_base_url,
            "PUBLIC_BASE_URL": self.base_url,
            "WEBHOOK_SECRET": c.webhook_secret,
            "SECRET_KEY": "stack-secret-key",
            "PHI_ENCRYPTION_KEYS": PHI_KEY,
            "RECOVERY_PRACTICES_FILE": str(c.practices_file),
            "RECOVERY_VAR_DIR": str(c.var_dir),
            "RECOVERY_SWEEP_INTERVAL_S": str(c.sweep_interval_s),
            "RECOVERY_SWEEP_GRACE_S": str(c.sweep_grace_s),
            "RECOVERY_FOLLOW_UP_INTERVAL_S": str(c.follow_up_interval_s),
            **({"RECOVERY_TEST_CLOCK_FILE": str(c.clock_file)} if c.clock_file else {}),
            "PYTHONUNBUFFERED": "1",
            # As `recovery run` does: /metrics adds up every process's counts from here.
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            **c.extra_env,
        }

    def _spawn(self, name: str, argv: list[str]) -> None:
        # Each process has a session of its own (a signal for the tests' terminal is not
        # theirs), so a test run killed before its teardown (a `timeout`, a Ctrl-C twice)
        # would leave them running, holding PostgreSQL connections and consuming the next
        # run's queue: they are told to end when the thread that started them ends.
        self._argv[name] = argv
        # cwd is the var dir: no stray .env from a developer's checkout leaks in. The child
        # keeps its own copy of the log's file descriptor, so ours is closed at once.
        with (self.config.var_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.config.var_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    # Generous: a loaded CI machine (or one shared by several suites) can take most of a
    # minute to import and boot gunicorn and Celery; a healthy one is up in seconds.
    def start(self, timeout: float = 120.0) -> Stack:
        bin_dir = Path(sys.executable).parent
        c = self.config
        self._spawn(
            "web",
            [
                str(bin_dir / "gunicorn"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(c.web_workers),
                "--threads",
                str(c.web_threads),
                # Several gunicorns share this machine (tests, benchmarks, `make run`);
                # each would otherwise claim the same ~/.gunicorn control socket.
                "--no-control-socket",
                # The access log as production writes it (the Procfile's), so the log
                # scan (tests/integration/test_log_scan.py) reads it too.
                "--access-logfile",
                "-",
                "--logger-class",
                "recovery.web.access_log.AccessLogger",
                *c.web_extra_args,
                c.web_app,
            ],
        )
        self.start_worker()
        if c.beat:
            self._spawn(
                "beat",
                [
                    *self._celery(bin_dir),
                    "beat",
                    "--loglevel",
                    "WARNING",
                    "--schedule",
                    str(c.var_dir / "celerybeat-schedule"),
                ],
            )
        self.wait_healthy(timeout)
        self.wait_worker_ready(timeout)
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        return self

    def _supervise(self) -> None:
        """Restart a worker or beat that exits on its own, as production's process manager
        (systemd's Restart=always, a PaaS's dyno manager) does: Celery's worker can die
        of a broker connection lost at the wrong moment, and the product must then recover
        by restarting it, not by luck."""
        while not self._stopping.wait(0.5):
            with self._lock:
                # Every worker (a second one beside "worker" too) and beat; not gunicorn.
                for name in [n for n in self.processes if n != "web"]:
                    process = self.processes.get(name)
                    if process is not None and process.poll() is not None:
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        self._spawn(name, self._argv[name])

    def wait_worker_ready(self, timeout: float, name: str = "worker") -> None:
        """Celery logs "ready." once it consumes; tests start only then. A restarted
        worker appends to the same log: it is ready once every start of it said so."""
        if name not in self.processes:
            return
        deadline = time.monotonic() + timeout
        path = self.config.var_dir / f"{name}.log"
        while time.monotonic() < deadline:
            starts = self.restarts.get(name, 0) + 1
            # The whole log, not its tail: on a busy machine "Discarding revoked task" lines
            # for the periodic jobs that expired meanwhile pushed "ready." out of the tail.
            if path.exists() and path.read_text(errors="replace").count(" ready.") >= starts:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not become ready:\n{self.log(name)}")

    def _celery(self, bin_dir: Path) -> list[str]:
        if self.config.celery_app is None:
            return [str(bin_dir / "recovery"), "celery"]
        return [str(bin_dir / "celery"), "-A", self.config.celery_app]

    def start_worker(self, name: str = "worker") -> None:
        """The worker, or (another name) one more beside it, as production runs several."""
        bin_dir = Path(sys.executable).parent
        c = self.config
        self._spawn(
            name,
            [
                *(["nice", "-n", str(c.worker_nice)] if c.worker_nice else []),
                *self._celery(bin_dir),
                "worker",
                "--loglevel",
                c.worker_loglevel,
                "--pool",
                c.worker_pool,
                "--concurrency",
                str(c.worker_concurrency),
                "--queues",
                c.worker_queues,
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{name}-{self.port}@%h",
                *c.worker_extra_args,
            ],
        )

    def stop_process(self, name: str, timeout: float = 15.0) -> None:
        with self._lock:
            process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.log(name)}")
            try:
                url = self.base_url + self.config.health_path
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"web did not become healthy:\n{self.log('web')}")

    def pids(self) -> dict[str, int]:
        """The pid of each running process by name (web is gunicorn's master, worker is
        Celery's main process); their children (gunicorn workers, pool processes) are
        found through /proc by whoever needs them."""
        return {name: p.pid for name, p in self.processes.items() if p.poll() is None}

    def log(self, name: str) -> str:
        path = self.config.var_dir / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        for name in list(self.processes):
            self.stop_process(name)

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            # __exit__ is not called when __enter__ fails: without this, a stack that did
            # not come up leaves its gunicorn and Celery running after the tests end.
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the spawning thread's process goes (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
