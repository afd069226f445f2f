"""What Recovery counts for Prometheus (`GET /metrics`; README "Reliability").

The counters and the histogram are prometheus-client's module-level metrics, as the
library intends: they cost nothing until used and read no settings of ours. Under gunicorn
and Celery each process counts for itself; with PROMETHEUS_MULTIPROC_DIR set (`recovery
run` sets it; the Procfile's processes need it, one empty folder per machine shared by its
web and worker processes) every process writes its counts there, and `/metrics` adds them
up, the worker's sends included. What the database already knows (the queue, the pages) is
read when Prometheus asks, not counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import utcnow
from recovery.domain.states import MessageStatus, PageStatus, sources
from recovery.models import Direction, Message, Page

WEBHOOKS = Counter(
    "recovery_webhooks_total",
    "Webhooks answered, by endpoint and HTTP status",
    ["endpoint", "status"],
)
TIME_TO_FIRST_TEXT = Histogram(
    "recovery_time_to_first_text_seconds",
    "From the missed call's webhook to the provider accepting its first text",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
TEXTS = Counter(
    "recovery_texts_total",
    "Texts that reached a status: what deliver() did (accepted, reconciled, retry, "
    "throttled, failed, dead_letter, suppressed) and what delivery reports said",
    ["status"],
)
SENDS_RETRIED = Counter("recovery_sends_retried_total", "Sends refused for now, to be tried again")
SENDS_RECONCILED = Counter(
    "recovery_sends_reconciled_total",
    "Texts in doubt found at the provider (recorded, not sent again)",
)
DUPLICATE_SIDS = Counter(
    "recovery_duplicate_sids_total",
    "Delivery reports naming a second provider id for one text: it went out twice",
)
SWEEPER_REQUEUES = Counter(
    "recovery_sweeper_requeues_total", "Texts and replies the sweeper queued again"
)

_WAITING = (*sources(MessageStatus.SENDING), MessageStatus.SENDING)


class DatabaseCollector(Collector):
    """Read at each scrape: texts waiting for a worker, and urgent pages nobody took."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        with self._sessions() as session:
            depth = session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.direction == Direction.OUTBOUND, Message.status.in_(_WAITING))
            )
            pages, oldest = session.execute(
                select(func.count(), func.min(Page.created_at)).where(
                    Page.status == PageStatus.ACTIVE
                )
            ).one()
        yield GaugeMetricFamily(
            "recovery_queue_depth",
            "Texts waiting to be sent (pending, retrying, sending)",
            value=depth or 0,
        )
        yield GaugeMetricFamily(
            "recovery_active_pages", "Urgent pages not acknowledged yet", value=pages or 0
        )
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "recovery_oldest_active_page_age_seconds",
            "How long the oldest unacknowledged urgent page has been paging (0: none)",
            value=max(age, 0.0),
        )


def exposition(sessions: sessionmaker[Session]) -> bytes:
    """The text Prometheus scrapes: every process's counts, then the database's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(DatabaseCollector(sessions))
    return counted + generate_latest(database)
