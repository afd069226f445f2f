"""The staff pages: the urgent page link, the task queue and an episode's timeline.

Thin views: each one reads the form, calls one service in one transaction, and renders
or redirects. What is shown, who may see it and the audit rows live in
recovery.services.staff and .queue; how it reads, in recovery.web.presenters.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from recovery.db import session_scope, utcnow
from recovery.domain.messages import MAX_STAFF_REPLY
from recovery.models import TaskStatus
from recovery.services import conversation, queue, staff, undo
from recovery.web import presenters, runtime_of
from recovery.web.auth import login_required, protect, refuse, safe_next, viewer
from recovery.web.labels import QUEUE_LABELS, REFUSAL_LABELS, display_phone
from recovery.web.live import allow_own_scripts

log = logging.getLogger(__name__)

bp = Blueprint("staff", __name__)
# Before protect(): after-request functions run last-registered first, so this amends the
# safe headers protect() sets (the queue and the conversation load our own scripts).
bp.after_request(allow_own_scripts)
protect(bp)


# --- how times read ----------------------------------------------------------------------


@bp.app_template_filter("when")
def when(at: datetime | None, now: datetime) -> str:
    """Today 3:05 PM, Yesterday 9:12 AM, Mon Nov 30 8:00 AM: in `at`'s own zone."""
    if at is None:
        return "—"
    today = now.astimezone(at.tzinfo).date()
    clock = at.strftime("%-I:%M %p")
    days = (at.date() - today).days
    if days == 0:
        return f"Today {clock}"
    if days == -1:
        return f"Yesterday {clock}"
    if days == 1:
        return f"Tomorrow {clock}"
    return at.strftime("%a %b %-d, ") + clock


@bp.app_template_filter("clock")
def clock(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%-I:%M %p")


@bp.app_template_filter("phone")
def readable_phone(e164: str | None) -> str:
    """(512) 555-0100 for people to read; a form's value stays E.164."""
    return display_phone(e164)


@bp.app_template_filter("span")
def span(delta: timedelta) -> str:
    """A duration as staff say it: 45 min, 2 h 5 min, 3 d 4 h."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


# --- views -----------------------------------------------------------------------------


@bp.get("/")
@login_required
def home() -> Response:
    return redirect(url_for("staff.tasks"))


@bp.get("/p/<code>")
@login_required
def page(code: str) -> str:
    runtime = runtime_of(current_app)
    now = utcnow()
    try:
        with session_scope(runtime.sessions) as session:
            detail = staff.view_page(session, runtime.cipher, viewer(), code, now=now)
    except staff.NotFound as exc:
        refuse(exc)
    # An urgent page is taken from the queue's "Urgent pages not taken": it is under Tasks.
    return render_template(
        "page.html", page=presenters.page_view(detail, now=now), now=now, nav="tasks"
    )


@bp.post("/p/<code>/ack")
@login_required
def take_page(code: str) -> Response:
    runtime = runtime_of(current_app)
    try:
        with session_scope(runtime.sessions) as session:
            result = staff.take_page(session, runtime.templates, viewer(), code, now=utcnow())
    except (staff.NotFound, staff.NotAllowed) as exc:
        refuse(exc)
    if result.taken:
        flash("You have this page. Nobody else will be paged for it.", "ok")
    else:
        flash(f"{result.acknowledged_by} had already taken this page.", "warn")
    return redirect(url_for("staff.page", code=code))


def _filters() -> queue.Filters:
    args = request.values
    return queue.Filters.parse(args.get("queue"), args.get("mine"), args.get("overdue"))


def _undo_window() -> timedelta:
    return timedelta(seconds=runtime_of(current_app).settings.undo_window_s)


def _board(now: datetime) -> presenters.BoardView:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            board = queue.task_board(
                session,
                viewer(),
                runtime_of(current_app).cipher,
                now=now,
                filters=_filters(),
                practice_slug=request.args.get("practice"),
                undo_window=_undo_window(),
            )
    except staff.NotFound as exc:
        refuse(exc)
    return presenters.board_view(board)


@bp.get("/tasks")
@login_required
def tasks() -> str:
    now = utcnow()
    board = _board(now)
    live_args: dict[str, Any] = {
        **board.filters.args(),
        **({"practice": board.practice.slug} if board.practices else {}),
    }
    return render_template(
        "tasks.html",
        board=board,
        now=now,
        nav="tasks",
        live_url=url_for("staff.tasks_live", **live_args),
    )


@bp.get("/tasks/live")
@login_required
def tasks_live() -> Any:
    """What the queue page polls: 204 while nothing it shows changed (no audit row, no
    decryption), else the board's fragment and its new version."""
    now = utcnow()
    known = request.headers.get("X-Live-Version")
    if known:
        try:
            with session_scope(runtime_of(current_app).sessions) as session:
                version = queue.board_version(
                    session, viewer(), now=now, practice_slug=request.args.get("practice")
                )
        except staff.NotFound as exc:
            refuse(exc)
        if version == known:
            return Response(status=204)
    board = _board(now)
    args: dict[str, Any] = request.args.to_dict()
    here = url_for("staff.tasks", **args)
    fragment = render_template("tasks_board.html", board=board, now=now, here=here)
    return Response(fragment, mimetype="text/html", headers={"X-Live-Version": board.version})


@bp.post("/tasks/next")
@login_required
def next_task() -> Response:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = queue.next_task(
                session,
                viewer(),
                now=utcnow(),
                filters=_filters(),
                practice_slug=request.form.get("practice"),
            )
    except staff.NotFound as exc:
        refuse(exc)
    if result is None:
        flash("Nothing is waiting: every task is claimed or done.", "ok")
        return redirect(safe_next(request.form.get("next")))
    flash("This task is yours now.", "ok")
    return redirect(safe_next(request.form.get("next")) + f"#task-{result.task_id}")


@bp.post("/tasks/<int:task_id>/claim")
@login_required
def claim_task(task_id: int) -> Response:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = queue.claim(session, viewer(), task_id, now=utcnow())
    except (staff.NotFound, staff.NotAllowed) as exc:
        refuse(exc)
    if result.changed:
        flash("Task claimed: it is yours.", "ok")
    elif result.status is TaskStatus.DONE:
        flash("That task was already completed.", "warn")
    else:
        flash(f"{result.claimed_by} had already claimed that task.", "warn")
    return redirect(safe_next(request.form.get("next")))


@bp.post("/tasks/<int:task_id>/unclaim")
@login_required
def unclaim_task(task_id: int) -> Response:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = queue.unclaim(session, viewer(), task_id, now=utcnow())
    except (staff.NotFound, staff.NotAllowed) as exc:
        refuse(exc)
    if result.changed:
        flash("Task given back to the queue.", "ok")
    else:
        flash("That task was not claimed.", "warn")
    return redirect(safe_next(request.form.get("next")))


@bp.post("/tasks/<int:task_id>/reassign")
@login_required
def reassign_task(task_id: int) -> Response:
    to_queue = queue.Filters.parse(request.form.get("queue"), None, None).queue
    to_user = request.form.get("user", type=int)
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = queue.reassign(
                session, viewer(), task_id, now=utcnow(), to_queue=to_queue, to_user=to_user
            )
    except staff.NotFound as exc:
        refuse(exc)
    if result.changed and result.queue is not None:
        # Says where it went: the card moves off a filtered list, and the hand-over is done.
        to = QUEUE_LABELS[result.queue]
        flash(
            f"Task handed over to {to}"
            + (f", for {result.assigned_name}." if result.assigned_name else "."),
            "ok",
        )
    else:
        flash("Nothing changed.", "ok")
    return redirect(safe_next(request.form.get("next")))


@bp.post("/tasks/<int:task_id>/complete")
@login_required
def complete_task(task_id: int) -> Response:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = queue.complete(
                session,
                viewer(),
                task_id,
                runtime_of(current_app).cipher,
                note=request.form.get("note"),
                called=request.form.get("called") == "1",
                now=utcnow(),
            )
    except staff.NotFound as exc:
        refuse(exc)
    if result.unreached:
        flash(
            "Task completed. Nobody has answered the patient, so this call is not counted "
            "as resolved.",
            "warn",
        )
    elif result.changed:
        flash("Task completed.", "ok")
    else:
        flash("That task was already completed.", "warn")
    return redirect(safe_next(request.form.get("next")))


UNDONE = {
    undo.UndoKind.COMPLETE_TASK: "Undone: the task is back on the queue as it was.",
    undo.UndoKind.MARK_BOOKED: "Undone: the call is no longer marked booked.",
}
UNDO_REFUSED = {
    undo.UndoRefusal.TOO_LATE: "Too late to undo: that was more than {minutes} ago.",
    undo.UndoRefusal.ALREADY_UNDONE: "That was undone already.",
    undo.UndoRefusal.CHANGED_SINCE: "It cannot be undone: the task or the call has changed "
    "since (completed again, booked, or ended another way).",
}


@bp.post("/undo/<int:action_id>")
@login_required
def undo_action(action_id: int) -> Response:
    """Undo of Complete or Mark booked, by who did it, within the undo window."""
    window = _undo_window()
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = undo.undo(session, viewer(), action_id, now=utcnow(), window=window)
    except staff.NotFound as exc:
        refuse(exc)
    if result.undone:
        flash(UNDONE[result.kind], "ok")
    else:
        assert result.refused is not None
        flash(UNDO_REFUSED[result.refused].format(minutes=span(window)), "warn")
    return redirect(safe_next(request.form.get("next")))


@bp.get("/episodes/<int:episode_id>")
@login_required
def episode(episode_id: int) -> str:
    return _episode_page(episode_id)


def _episode(episode_id: int, now: datetime) -> tuple[presenters.EpisodeView, str]:
    """The conversation as the page shows it, and the version its live poll starts from
    (read first: a change in between is shown by the next poll, never missed)."""
    runtime = runtime_of(current_app)
    try:
        with session_scope(runtime.sessions) as session:
            version = staff.episode_version(session, viewer(), episode_id)
            detail = staff.view_episode(
                session,
                runtime.cipher,
                viewer(),
                episode_id,
                now=now,
                undo_window=_undo_window(),
            )
    except staff.NotFound as exc:
        refuse(exc)
    return presenters.episode_view(detail, now=now), version


def _episode_page(episode_id: int, *, reply_text: str = "", reply_error: str | None = None) -> Any:
    now = utcnow()
    episode, version = _episode(episode_id, now)
    page = render_template(
        "episode.html",
        nav="episodes",
        episode=episode,
        now=now,
        reply_text=reply_text,
        reply_error=reply_error,
        max_reply=MAX_STAFF_REPLY,
        live_version=version,
    )
    return (page, 400) if reply_error else page


@bp.get("/episodes/<int:episode_id>/live")
@login_required
def episode_live(episode_id: int) -> Any:
    """What the conversation page polls: 204 while its timeline would read the same (no
    audit row, no decryption), else the timeline again: the patient's answer lands
    without a reload."""
    known = request.headers.get("X-Live-Version")
    if known:
        try:
            with session_scope(runtime_of(current_app).sessions) as session:
                version = staff.episode_version(session, viewer(), episode_id)
        except staff.NotFound as exc:
            refuse(exc)
        if version == known:
            return Response(status=204)
    now = utcnow()
    episode, version = _episode(episode_id, now)
    fragment = render_template("episode_timeline.html", episode=episode, now=now)
    return Response(fragment, mimetype="text/html", headers={"X-Live-Version": version})


@bp.post("/episodes/<int:episode_id>/reply")
@login_required
def reply(episode_id: int) -> Any:
    """Reply to patient: queued in the request's transaction, handed to the worker after
    the commit (the sweeper sends it if the broker is down)."""
    runtime = runtime_of(current_app)
    text = request.form.get("text", "")
    saved = request.form.get("saved", type=int)
    try:
        with session_scope(runtime.sessions) as session:
            result = conversation.send_reply(
                session,
                runtime.cipher,
                viewer(),
                episode_id,
                text=text,
                saved_reply_id=saved,
                now=utcnow(),
            )
    except conversation.NotFound:
        abort(404)
    if result.refused is not None:
        return _episode_page(
            episode_id, reply_text=text, reply_error=REFUSAL_LABELS[result.refused]
        )
    assert result.message_id is not None
    try:
        runtime.dispatcher.send_text(result.message_id)
    except Exception:  # noqa: BLE001 - the broker is down: the sweeper sends it
        log.warning("reply %s not queued now; the sweeper will send it", result.message_id)
    flash("Reply sent to the patient.", "ok")
    return redirect(url_for("staff.episode", episode_id=episode_id) + "#reply")


@bp.post("/episodes/<int:episode_id>/book")
@login_required
def mark_booked(episode_id: int) -> Response:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            booked = staff.mark_booked(session, viewer(), episode_id, now=utcnow())
    except (staff.NotFound, staff.NotAllowed) as exc:
        refuse(exc)
    if booked:
        flash("Marked booked.", "ok")
    else:
        flash("This call already has another outcome; it was not changed.", "warn")
    return redirect(url_for("staff.episode", episode_id=episode_id))
