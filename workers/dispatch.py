"""The web's side of the queue: publish a send task, fail fast if the broker is down."""

from __future__ import annotations

from celery import Celery

from recovery.config import Settings


class CeleryDispatcher:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryDispatcher:
        from workers.celery_app import make_celery

        celery = make_celery(settings)
        # The publisher's connection gives up after one immediate retry (enough for a pooled
        # connection that went stale). Kombu's default keeps retrying with backoff, which
        # held a webhook for six seconds when Redis was down.
        celery.conf.broker_transport_options = {
            **celery.conf.broker_transport_options,
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.1,
        }
        return cls(celery)

    def send_text(self, message_id: int) -> None:
        # retry=False: a webhook must answer fast. If Redis is down the publish fails now,
        # and the committed pending row waits for the sweeper instead of the request.
        self._celery.send_task("recovery.send_text", args=[message_id], retry=False)

    def handle_reply(self, message_id: int) -> None:
        self._celery.send_task("recovery.handle_reply", args=[message_id], retry=False)

    def ping(self) -> None:
        """Raises unless the broker answers now (for /healthz): one attempt, two seconds."""
        with self._celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            client = getattr(connection.default_channel, "client", None)
            if client is not None:  # Redis: the connection alone may be a stale pool entry
                client.ping()
