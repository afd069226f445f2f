"""The embedded broker's files: a consumer never reads a message or an exchange table
that another process is still writing (kombu's own transport let the worker read an empty
file and die with JSONDecodeError under `make run`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from workers import broker

TASKS = Queue("celery", Exchange("celery", "direct"), routing_key="celery")


@pytest.fixture
def options(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "queue").mkdir()
    return {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "control_folder": str(tmp_path / "control"),
    }


@pytest.fixture
def connect(options: dict[str, Any]) -> Iterator[Any]:
    opened: list[Connection] = []

    def _connect() -> Connection:
        connection = Connection(
            "filesystem://", transport="workers.broker:Transport", transport_options=options
        )
        opened.append(connection)
        return connection

    yield _connect
    for connection in opened:
        connection.release()


def test_a_message_is_invisible_to_a_consumer_until_it_is_written_whole(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = connect().default_channel
    seen_while_writing: list[int] = []
    real_replace = os.replace

    def replace_after_a_look(src: str, dst: str) -> None:
        # The bytes are on disk; a consumer polling now must find no message yet.
        seen_while_writing.append(consumer._size("celery"))
        with pytest.raises(Empty):
            consumer._get("celery")
        real_replace(src, dst)

    monkeypatch.setattr(broker.os, "replace", replace_after_a_look)
    connect().Producer().publish(
        {"message_id": 7}, exchange=TASKS.exchange, routing_key="celery", declare=[TASKS]
    )

    assert seen_while_writing == [0]
    message = connect().SimpleQueue(TASKS).get(timeout=1)
    assert message.payload == {"message_id": 7}
    assert not list(Path(consumer.data_folder_in).glob("*" + broker.PARTIAL_SUFFIX))


def test_processes_binding_a_fresh_exchange_at_once_all_succeed(connect: Any) -> None:
    errors: list[BaseException] = []
    channels = [connect().default_channel for _ in range(8)]
    start = threading.Barrier(len(channels))

    def bind(channel: Any, n: int) -> None:
        start.wait()
        try:
            channel.queue_declare(f"q{n}")
            channel.exchange_declare("fresh", type="direct")
            channel.queue_bind(f"q{n}", "fresh", routing_key=f"q{n}")
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever a bind raised
            errors.append(exc)

    threads = [threading.Thread(target=bind, args=(c, n)) for n, c in enumerate(channels)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    table = {q.queue for q in channels[0].get_table("fresh")}
    assert table == {f"q{n}" for n in range(8)}
