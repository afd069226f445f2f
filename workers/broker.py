"""The embedded broker: kombu's filesystem transport, safe with several processes at once.

kombu's transport creates a message file under its final name and writes it afterwards;
the worker, listing the folder every 50 ms, can take the file in between and read nothing
(`Unrecoverable error: JSONDecodeError`, and the worker is gone: under `make run` with a
missed call every 0.2 s it took three minutes, and the message in that file was lost).
The exchange tables in control/ have the same gap: the first process to bind creates the
file empty and writes it later, and a second one can read it in between.

Here a message is written under a name no consumer looks at and renamed into place, and a
rename within a folder is atomic: a consumer sees the whole file or no file. An exchange
table is born holding an empty list, linked into place whole, and then updated under
kombu's own lock as before.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

# `_get` takes a file only if everything after its first dot is "<queue>.msg"; a partial
# file's name has more after it, so no consumer, size or purge ever counts it.
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    # kombu's filesystem channel names the argument "payload", its base class "message".
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # The same name as kombu's: milliseconds first, so the folder sorts oldest first.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = Path(self.data_folder_out) / name
        try:
            _write_then_rename(path, dumps(payload).encode())
        except OSError as exc:  # what kombu raises, so a publisher handles it as before
            raise ChannelError(f"Cannot add file {str(path)!r} to directory") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        table = self._exchange_file(exchange)
        if not table.exists():
            self.control_folder.mkdir(exist_ok=True)
            _create_whole(table, b"[]")
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel


def _write_then_rename(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    partial.write_bytes(data)
    os.replace(partial, path)


def _create_whole(path: Path, data: bytes) -> None:
    """Create PATH holding DATA unless it exists: a hard link never replaces a file, so of
    two processes creating the same table one wins and the other keeps what it wrote."""
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    partial.write_bytes(data)
    try:
        os.link(partial, path)
    except FileExistsError:
        pass
    finally:
        partial.unlink()
