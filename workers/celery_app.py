"""The Celery app, built from the Settings it is given: `make_celery(settings)`.

Importing this module builds nothing: `recovery celery worker` (and `beat`) builds the app
from the environment and runs Celery's command line on it, the web builds its publisher,
and tests build their own. The tasks (workers.tasks) are shared tasks: they belong to whichever
app is current.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from recovery.config import Settings
from recovery.log import MaskPhonesFilter, quiet_chatty_loggers

PERIODIC_QUEUE = "periodic"
PERIODIC_TASKS = (
    "recovery.sweep",
    "recovery.escalate_pages",
    "recovery.breach_sweep",
    "recovery.follow_up",
    "recovery.dead_letters",
)


def make_celery(settings: Settings) -> Celery:
    celery = Celery("recovery", include=["workers.tasks"])
    config: dict[str, Any] = {
        "task_acks_late": True,  # a worker killed mid-task leaves the task for another
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        # One task per pool thread, none held in reserve: a task a worker holds but has not
        # started is lost with it until Redis's visibility timeout (an hour), while a task
        # it started has claimed its text under a lease that lapses in seconds.
        "worker_prefetch_multiplier": 1,
        # Redis restarted or unreachable: the worker and beat wait for it, for ever, instead
        # of exiting after Celery's default 100 attempts (a few hours of backoff); the texts
        # are in the database meanwhile. See README "Reliability" and workers/redis_broker.py.
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        # A task running when the connection drops finishes and records its text; it
        # cannot be acknowledged on the lost connection and may be delivered again, which
        # the claim makes harmless. (Celery 6 changes the default; we choose it here.)
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": True,
        # Periodic jobs have a queue of their own: behind a backlog of texts they expired
        # unrun (measured at 100 calls/s), and an urgent page must escalate on time
        # whatever the texts are doing. Workers consume both queues (see the Procfile).
        "task_routes": {name: {"queue": PERIODIC_QUEUE} for name in PERIODIC_TASKS},
        # A periodic job that waited longer than its interval is superseded by the next.
        "beat_schedule": {
            "sweep-pending-texts": {
                "task": "recovery.sweep",
                "schedule": settings.sweep_interval_s,
                "options": {"expires": settings.sweep_interval_s},
            },
            "escalate-urgent-pages": {
                "task": "recovery.escalate_pages",
                "schedule": settings.sweep_interval_s,
                "options": {"expires": settings.sweep_interval_s},
            },
            # Tasks past their due time: the manager hears within seconds of the breach,
            # and a clinical task (due minutes after the reply) is paged as fast as pages.
            "task-breaches": {
                "task": "recovery.breach_sweep",
                "schedule": settings.sweep_interval_s,
                "options": {"expires": settings.sweep_interval_s},
            },
            # Texts whose retries ran out: the patient is waiting, a person calls.
            "dead-letters": {
                "task": "recovery.dead_letters",
                "schedule": settings.sweep_interval_s,
                "options": {"expires": settings.sweep_interval_s},
            },
            "follow-up-episodes": {
                "task": "recovery.follow_up",
                "schedule": settings.follow_up_interval_s,
                "options": {"expires": settings.follow_up_interval_s},
            },
        },
        "beat_schedule_filename": str((settings.var_dir / "celerybeat-schedule").resolve()),
        "timezone": "UTC",
    }
    if settings.uses_embedded_broker:
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_url"] = "filesystem://localhost//"
        # kombu's filesystem transport, with its files written whole (see workers/broker.py).
        config["broker_transport"] = "workers.broker:Transport"
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # default: ./control, wherever we run
            "store_processed": False,
            # The default polls once a second, which alone would blow the one-second goal.
            "polling_interval": 0.05,
        }
    else:
        config["broker_url"] = settings.redis_url
        # kombu's Redis transport, able to close a connection Redis dropped (see the module).
        config["broker_transport"] = "workers.redis_broker:Transport"
        config["broker_transport_options"] = {"socket_connect_timeout": 2, "socket_timeout": 5}
    celery.conf.update(config)
    celery.conf["recovery_settings"] = settings
    # dispatch_uid: one connection however many apps a process builds (tests build many).
    after_setup_logger.connect(_mask_handlers, dispatch_uid="recovery-mask-phones")
    after_setup_task_logger.connect(_mask_handlers, dispatch_uid="recovery-mask-phones-task")
    return celery


def _mask_handlers(logger: logging.Logger, **_: Any) -> None:
    for handler in logger.handlers:
        if not any(isinstance(f, MaskPhonesFilter) for f in handler.filters):
            handler.addFilter(MaskPhonesFilter())
    # "Task received / succeeded" for a sweep every two seconds drowns the lines that
    # matter; failures are still logged at ERROR.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_chatty_loggers()
