"""The Celery side: the app's configuration, the task bodies, and the web's publisher."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import Ignore
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import TEMPLATES_DIR, Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, MessageStatus
from recovery.services.leases import LeaseKeeper
from recovery.sms.console import ConsoleProvider, number_digest, outbox_key, read_outbox
from recovery.sms.twilio import STATUS_CALLBACK_PATH
from tests.conftest import PHI_KEY
from tests.support.database_away import database_away
from tests.support.factories import missed_call
from workers import tasks
from workers.celery_app import make_celery
from workers.dispatch import CeleryDispatcher


@pytest.fixture
def embedded(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert settings.redis_url == ""
    return settings


# --- the app ---------------------------------------------------------------------------


def test_without_redis_the_filesystem_broker_polls_fast_and_its_folders_exist(
    embedded: Settings,
) -> None:
    celery = make_celery(embedded)

    assert celery.conf.broker_url == "filesystem://localhost//"
    options = celery.conf.broker_transport_options
    assert options["polling_interval"] < 0.1
    queue = embedded.var_dir.resolve() / "broker" / "queue"
    assert options["data_folder_in"] == options["data_folder_out"] == str(queue)
    assert queue.is_dir()
    assert (embedded.var_dir / "broker" / "processed").is_dir()


def test_with_redis_url_the_app_uses_redis_and_makes_no_broker_folder(
    settings: Settings,
) -> None:
    with_redis = settings.model_copy(update={"redis_url": "redis://127.0.0.1:6390/3"})

    celery = make_celery(with_redis)

    assert celery.conf.broker_url == "redis://127.0.0.1:6390/3"
    assert "polling_interval" not in celery.conf.broker_transport_options
    assert not (settings.var_dir / "broker").exists()
    # Redis away: wait for it for ever, through the transport that survives its restart
    # (the proof is tests/faults/test_redis.py).
    assert celery.conf.broker_transport == "workers.redis_broker:Transport"
    assert celery.conf.broker_connection_retry is True
    assert celery.conf.broker_connection_max_retries is None


@pytest.mark.parametrize("interval", [2.0, 0.5])
def test_beat_runs_the_sweep_and_the_escalations_every_sweep_interval(
    settings: Settings, interval: float
) -> None:
    celery = make_celery(settings.model_copy(update={"sweep_interval_s": interval}))

    by_task = {entry["task"]: entry for entry in celery.conf.beat_schedule.values()}
    for name in ("recovery.sweep", "recovery.escalate_pages", "recovery.breach_sweep"):
        assert by_task[name]["schedule"] == interval
        assert by_task[name]["options"]["expires"] == interval
        assert name in celery.tasks
    # One job for tasks past their due time (the manager's text, the clinical page, the
    # manager's list): two would each lock and read the same overdue rows every tick.
    assert [n for n in by_task if "breach" in n or "overdue" in n] == ["recovery.breach_sweep"]


def test_beat_follows_up_episodes_every_follow_up_interval(settings: Settings) -> None:
    celery = make_celery(settings.model_copy(update={"follow_up_interval_s": 30.0}))

    by_task = {entry["task"]: entry for entry in celery.conf.beat_schedule.values()}
    assert by_task["recovery.follow_up"]["schedule"] == 30.0
    assert "recovery.follow_up" in celery.tasks


def test_tasks_are_acknowledged_late_and_the_settings_travel_with_the_app(
    settings: Settings, celery: Celery
) -> None:
    celery = make_celery(settings)

    assert celery.conf.task_acks_late is True
    assert celery.conf.task_reject_on_worker_lost is True
    assert celery.conf["recovery_settings"] is settings


# --- the task bodies -------------------------------------------------------------------


def outbox_of(settings: Settings) -> Path:
    return settings.var_dir / "outbox.jsonl"


@dataclass
class Queued:
    """Stands in for the send_text task where the sweeper queues it."""

    ids: list[int] = field(default_factory=list)

    def delay(self, message_id: int) -> None:
        self.ids.append(message_id)


@pytest.fixture
def celery(settings: Settings) -> Iterator[Celery]:
    """A Celery app of this test's own, current while it runs (the shared tasks' `delay`
    goes to the current app)."""
    app = make_celery(settings)
    app.set_current()
    yield app
    app.close()


@pytest.fixture
def resources(
    settings: Settings, sessions: sessionmaker[Session], celery: Celery
) -> Iterator[tasks.Resources]:
    res = tasks.Resources(
        settings,
        sessions,
        ConsoleProvider(outbox_of(settings), stream=io.StringIO(), key=outbox_key(PHI_KEY)),
        SmsTemplates(TEMPLATES_DIR / "sms"),
        PhiCipher([PHI_KEY]),
        LeaseKeeper(sessions, timedelta(seconds=settings.claim_lease_s)),
    )
    # This app's real task objects, with hand-built resources instead of the lazily built.
    for name in (
        "recovery.send_text",
        "recovery.sweep",
        "recovery.handle_reply",
        "recovery.escalate_pages",
        "recovery.follow_up",
    ):
        celery.tasks[name].__dict__["resources"] = res
    yield res


def queue_text(
    sessions: sessionmaker[Session], templates: SmsTemplates, caller: str, age_s: float
) -> int:
    now = utcnow() - timedelta(seconds=age_s)
    with session_scope(sessions) as session:
        result = missed_call(session, templates, at=now, caller=caller, call_id="CA" + caller)
    assert result.message_id is not None
    return result.message_id


def status(sessions: sessionmaker[Session], message_id: int) -> MessageStatus:
    with sessions() as session:
        return session.scalars(select(Message.status).where(Message.id == message_id)).one()


def test_send_text_task_sends_a_pending_first_text(
    resources: tasks.Resources,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    celery: Celery,
) -> None:
    message_id = queue_text(sessions, templates, "+15125550199", age_s=0)
    task = celery.tasks["recovery.send_text"]

    assert task.run(message_id) == "accepted"
    assert task.run(message_id) == "not_claimed"

    [sent] = read_outbox(outbox_of(resources.settings))
    assert sent["to_digest"] == number_digest(outbox_key(PHI_KEY), "+15125550199")
    assert sent["body"].startswith("Valley Family Clinic:")
    assert status(sessions, message_id) is MessageStatus.ACCEPTED


def test_send_text_task_runs_eagerly_through_celery(
    resources: tasks.Resources,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    celery: Celery,
) -> None:
    message_id = queue_text(sessions, templates, "+15125550199", age_s=0)

    result = celery.tasks["recovery.send_text"].apply(args=[message_id])

    assert result.get() == "accepted"
    assert status(sessions, message_id) is MessageStatus.ACCEPTED


def test_status_callback_is_sent_only_to_twilio(resources: tasks.Resources) -> None:
    assert resources.status_callback is None

    twilio = replace(
        resources, settings=resources.settings.model_copy(update={"sms_provider": "twilio"})
    )
    assert twilio.status_callback == "https://recovery.example.com" + STATUS_CALLBACK_PATH


def test_sweep_queues_texts_past_their_grace_and_leaves_fresh_ones(
    resources: tasks.Resources,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    monkeypatch: pytest.MonkeyPatch,
    celery: Celery,
) -> None:
    lost = queue_text(sessions, templates, "+15125550198", age_s=30)
    queue_text(sessions, templates, "+15125550197", age_s=0)
    queued = Queued()
    monkeypatch.setattr(tasks, "send_text", queued)

    assert celery.tasks["recovery.sweep"].run() == 1

    assert queued.ids == [lost]
    assert status(sessions, lost) is MessageStatus.PENDING  # the queued task sends it


def test_sweep_with_nothing_due_queues_nothing(
    resources: tasks.Resources, monkeypatch: pytest.MonkeyPatch, celery: Celery
) -> None:
    queued = Queued()
    monkeypatch.setattr(tasks, "send_text", queued)

    assert celery.tasks["recovery.sweep"].run() == 0
    assert queued.ids == []


# --- the database away -----------------------------------------------------------------


def test_a_text_whose_database_restarts_waits_for_it_and_goes_once_it_is_back(
    resources: tasks.Resources,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    celery: Celery,
) -> None:
    message_id = queue_text(sessions, templates, "+15125550199", age_s=0)

    with database_away(sessions.kw["bind"], times=3) as refused:
        # Called as Celery calls it (not .run): the wait is the task's, around its body.
        assert celery.tasks["recovery.send_text"](message_id) == "accepted"

    assert refused == [3]
    assert len(read_outbox(outbox_of(resources.settings))) == 1
    assert status(sessions, message_id) is MessageStatus.ACCEPTED


def test_a_text_past_the_wait_is_left_pending_for_the_sweeper_without_a_traceback(
    resources: tasks.Resources,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    celery: Celery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    message_id = queue_text(sessions, templates, "+15125550199", age_s=0)
    resources.settings = resources.settings.model_copy(update={"database_wait_s": 0.2})

    with database_away(sessions.kw["bind"]), pytest.raises(Ignore):
        celery.tasks["recovery.send_text"](message_id)

    assert read_outbox(outbox_of(resources.settings)) == []
    assert status(sessions, message_id) is MessageStatus.PENDING
    [line] = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert "the sweeper will queue it again" in line.getMessage()
    assert line.exc_info is None


def test_a_periodic_job_does_not_wait_for_the_database(
    resources: tasks.Resources, celery: Celery, sessions: sessionmaker[Session]
) -> None:
    with database_away(sessions.kw["bind"]) as refused, pytest.raises(Ignore):
        celery.tasks["recovery.sweep"]()

    assert refused == [1]  # no second try: the next run is seconds away


# --- the web's publisher ---------------------------------------------------------------


class RecordingCelery:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_with = fail_with

    def send_task(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if self.fail_with is not None:
            raise self.fail_with


def test_dispatcher_publishes_the_id_without_retrying() -> None:
    celery = RecordingCelery()

    CeleryDispatcher(celery).send_text(42)

    assert celery.calls == [("recovery.send_text", {"args": [42], "retry": False})]


def test_dispatcher_lets_a_broker_failure_reach_the_caller() -> None:
    celery = RecordingCelery(fail_with=ConnectionRefusedError("redis down"))

    with pytest.raises(ConnectionRefusedError):
        CeleryDispatcher(celery).send_text(42)


def test_dispatcher_from_settings_writes_the_task_to_the_embedded_broker(
    embedded: Settings,
) -> None:
    dispatcher = CeleryDispatcher.from_settings(embedded)

    dispatcher.send_text(42)

    [published] = list((embedded.var_dir / "broker" / "queue").iterdir())
    headers = json.loads(published.read_text())["headers"]
    assert headers["task"] == "recovery.send_text"
    assert headers["argsrepr"] == "[42]"


def test_periodic_jobs_have_their_own_queue_so_texts_cannot_starve_them(
    settings: Settings,
) -> None:
    celery = make_celery(settings)
    routes = celery.conf.task_routes
    for name in ("recovery.sweep", "recovery.escalate_pages", "recovery.follow_up"):
        assert routes[name] == {"queue": "periodic"}
    assert "recovery.send_text" not in routes


# --- nothing at import -----------------------------------------------------------------


def test_importing_every_module_of_the_product_does_nothing(tmp_path: Path) -> None:
    """Every module of recovery/ and workers/ imports without reading settings, building an
    app or touching the disk: only an edge (`recovery celery`, create_app, a CLI command)
    does that, when it runs."""
    script = (
        "import importlib, pkgutil, celery, recovery, workers\n"
        "for package in (recovery, workers):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "assert celery.current_app.main != 'recovery', celery.current_app.main\n"
    )
    env = {**os.environ, "RECOVERY_VAR_DIR": str(tmp_path / "var")}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True)

    assert list(tmp_path.iterdir()) == []


def test_recovery_celery_runs_celerys_command_line_on_the_app_built_from_settings(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "RECOVERY_VAR_DIR": str(tmp_path / "var")}
    env.pop("REDIS_URL", None)
    recovery = Path(sys.executable).parent / "recovery"
    out = subprocess.run(
        [str(recovery), "celery", "report"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    assert "transport:workers.broker:Transport" in out  # the embedded broker, from Settings
    assert (tmp_path / "var" / "broker" / "queue").is_dir()
