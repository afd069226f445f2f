"""What the figures were measured on: machine, versions, and the date."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psycopg
import redis

from bench.infra import psycopg_url

PACKAGES = (
    "gunicorn",
    "celery",
    "kombu",
    "redis",
    "twilio",
    "flask",
    "sqlalchemy",
    "psycopg",
    "pydantic",
    "aiohttp",
)
PG_SETTINGS = (
    "max_connections",
    "shared_buffers",
    "work_mem",
    "synchronous_commit",
    "max_parallel_workers_per_gather",
    "jit",
)
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Environment:
    date: str
    cpus: int
    memory_gib: float
    cpu_model: str
    kernel: str
    python: str
    postgresql: str
    redis: str
    commit: str
    packages: dict[str, str] = field(default_factory=dict)
    postgresql_settings: dict[str, str] = field(default_factory=dict)
    load_average: str = ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _commit() -> str:
    """The checked-out commit, read from .git's files (no git command is run)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        ref_file = git / ref
        if ref_file.exists():
            return ref_file.read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        pass
    return "unknown"


def collect(admin_url: str, redis_url: str) -> Environment:
    with psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg_version = str(row[0]) if row else "unknown"
        settings = {}
        for name in PG_SETTINGS:
            value = conn.execute(f"SHOW {name}").fetchone()
            settings[name] = str(value[0]) if value else "?"
    info = redis.Redis.from_url(redis_url, socket_connect_timeout=2).info("server")
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return Environment(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count() or 0,
        memory_gib=round(_memory_gib(), 1),
        cpu_model=_cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        postgresql=pg_version,
        redis=str(info.get("redis_version", "unknown")),
        commit=_commit(),
        packages=packages,
        postgresql_settings=settings,
        load_average=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )
