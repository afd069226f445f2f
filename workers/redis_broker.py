"""The production broker: kombu's Redis transport, surviving a Redis restart.

When Redis goes away under a running worker, Celery closes the lost connection before it
reconnects. Closing its channel puts back the tasks the worker holds unacknowledged, and
for that kombu builds a new Redis connection pool from the connection's settings; but by
then the connection has let go of them (`transport.client` is None), and the worker dies
of `'NoneType' object has no attribute 'hostname'` in `restore_unacked_once` (kombu
issues #970 and #582; still so in kombu 5.7). Measured on our fault suite: the worker
exited on every Redis restart while it held tasks.

Here the channel keeps the settings its first pool was built from and builds later pools
from those. Redis still down: putting the tasks back fails with a connection error, which
the close already ignores, and they wait in Redis's unacked set for its visibility
timeout; the texts they were for are in the database, where the sweeper finds them.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _saved_connparams: dict[bool, dict[str, Any]]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        saved = self.__dict__.setdefault("_saved_connparams", {})
        if self.connection.client is None and asynchronous in saved:
            return dict(saved[asynchronous])
        params: dict[str, Any] = super()._connparams(asynchronous)
        saved[asynchronous] = dict(params)
        return params


class Transport(redis.Transport):
    Channel = Channel
