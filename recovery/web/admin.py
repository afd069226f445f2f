"""Administration pages for managers (their practice) and admins (every practice):
users, the on-call roster and its fire drills, saved replies; and the one-time
set-password page.

Thin views: read the form, call recovery.services.admin in one transaction, render or
redirect. Who may do what, and the audit rows, live in the service.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask import session as cookie
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from recovery.db import session_scope, utcnow
from recovery.domain.drills import DrillRefusal
from recovery.domain.messages import MessageKind
from recovery.domain.phones import parse_number
from recovery.models import Practice, Role, SavedReply, User
from recovery.services import admin, drills
from recovery.services.auth import Viewer
from recovery.services.staff import practices_for
from recovery.services.texts import queue_text
from recovery.web import runtime_of
from recovery.web.auth import SIGN_IN_AS, login_required, protect, refuse, viewer

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__)
protect(bp)

ROLE_LABELS = {
    Role.STAFF: "Front desk / billing",
    Role.CLINICIAN: "Clinician",
    Role.MANAGER: "Manager",
    Role.ADMIN: "Admin",
}


@bp.app_template_global()
def may_administer(signed_in: Viewer | None) -> bool:
    return signed_in is not None and admin.may_administer(signed_in)


def _practice(session: Session, slug: str | None) -> Practice:
    return admin.practice_by_slug(session, viewer(), slug)


def _here(practice_slug: str, endpoint: str) -> str:
    if viewer().is_admin:
        return url_for(endpoint, practice=practice_slug)
    return url_for(endpoint)


# --- users -------------------------------------------------------------------------------


def _users_page(slug: str | None, **extra: object) -> str | tuple[str, int]:
    runtime = runtime_of(current_app)
    now = utcnow()
    try:
        with session_scope(runtime.sessions) as session:
            practice = _practice(session, slug)
            rows = admin.list_users(session, viewer(), practice, now=now)
            choices = practices_for(session, viewer()) if viewer().is_admin else []
            ref = (practice.slug, practice.name)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    status = extra.pop("status", 200)
    assert isinstance(status, int)
    return (
        render_template(
            "admin_users.html",
            users=rows,
            practice_slug=ref[0],
            practice_name=ref[1],
            practices=choices,
            roles=admin.roles_for(viewer()),
            role_labels=ROLE_LABELS,
            nav="admin",
            tab="users",
            form=request.form if request.method == "POST" and "error" in extra else {},
            **extra,
        ),
        status,
    )


@bp.get("/admin/users")
@login_required
def users() -> str | tuple[str, int]:
    return _users_page(request.args.get("practice"))


@bp.post("/admin/users")
@login_required
def invite() -> str | tuple[str, int] | Response:
    runtime = runtime_of(current_app)
    now = utcnow()
    slug = request.form.get("practice")
    phone_raw = (request.form.get("phone") or "").strip()
    phone = parse_number(phone_raw).e164 if phone_raw else None
    if phone_raw and phone is None:
        return _users_page(slug, error=f"{phone_raw} is not a phone number.", status=400)
    try:
        role = Role(request.form.get("role", "staff"))
    except ValueError:
        return _users_page(slug, error="Pick a role.", status=400)
    text_id = None
    try:
        with session_scope(runtime.sessions) as session:
            practice = _practice(session, slug)
            invitation = admin.invite(
                session,
                viewer(),
                practice,
                email=request.form.get("email", ""),
                name=request.form.get("name", ""),
                role=role,
                now=now,
            )
            link = runtime.settings.public_base_url + url_for(
                "admin.set_password", token=invitation.token
            )
            if phone:
                text_id = queue_text(
                    session,
                    runtime.templates,
                    practice,
                    to=phone,
                    kind=MessageKind.INVITE,
                    now=now,
                    link=link,
                ).id
    except admin.Invalid as exc:
        return _users_page(slug, error=str(exc), status=400)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    if text_id is not None:
        runtime.dispatcher.send_text(text_id)  # after the commit; the sweeper backs it up
    return _users_page(slug, invitation=invitation, link=link, texted=phone)


@bp.post("/admin/users/<int:user_id>/role")
@login_required
def change_role(user_id: int) -> Response:
    try:
        role = Role(request.form.get("role", ""))
    except ValueError:
        abort(400, description="Pick a role.")
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = admin.change_role(session, viewer(), user_id, role, now=utcnow())
            name, slug = result.value.name, _slug_of(session, result.value.practice_id)
    except admin.Invalid as exc:
        flash(str(exc), "warn")
        return redirect(request.referrer or url_for("admin.users"))
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    if result.changed:
        flash(f"{name} is now {ROLE_LABELS[role].lower()}.", "ok")
    else:
        flash(f"{name} already had that role.", "warn")
    return redirect(_here(slug, "admin.users"))


@bp.post("/admin/users/<int:user_id>/active")
@login_required
def set_active(user_id: int) -> Response:
    active = request.form.get("active") == "1"
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            result = admin.set_active(session, viewer(), user_id, active, now=utcnow())
            name, slug = result.value.name, _slug_of(session, result.value.practice_id)
    except admin.Invalid as exc:
        flash(str(exc), "warn")
        return redirect(request.referrer or url_for("admin.users"))
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    if not result.changed:
        flash(f"{name} was already {'active' if active else 'deactivated'}.", "warn")
    elif active:
        flash(f"{name} can sign in again.", "ok")
    else:
        flash(f"{name} is deactivated and signed out everywhere.", "ok")
    return redirect(_here(slug, "admin.users"))


@bp.post("/admin/users/<int:user_id>/link")
@login_required
def new_link(user_id: int) -> str | tuple[str, int]:
    runtime = runtime_of(current_app)
    try:
        with session_scope(runtime.sessions) as session:
            invitation = admin.new_password_link(session, viewer(), user_id, now=utcnow())
            user = session.get(User, user_id)
            slug = _slug_of(session, user.practice_id if user else None)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    link = runtime.settings.public_base_url + url_for("admin.set_password", token=invitation.token)
    return _users_page(slug, invitation=invitation, link=link, texted=None)


def _slug_of(session: Session, practice_id: int | None) -> str:
    practice = session.get(Practice, practice_id) if practice_id else None
    return practice.slug if practice else ""


# --- choosing a password through a one-time link -----------------------------------------


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> str | tuple[str, int] | Response:
    runtime = runtime_of(current_app)
    now = utcnow()
    error = None
    with session_scope(runtime.sessions) as session:
        holder = admin.link_holder(session, token, now=now)
        if holder is not None and request.method == "POST":
            password = request.form.get("password", "")
            if password != request.form.get("confirm", ""):
                error = "The two passwords are not the same."
            else:
                try:
                    done = admin.redeem(session, token, password, now=now)
                except admin.Invalid as exc:
                    error = str(exc)
                else:
                    if done is not None:
                        flash("Your password is set. Sign in with it.", "ok")
                        cookie[SIGN_IN_AS] = done.email
                        return redirect(url_for("auth.login"))
    if holder is None:
        return (
            render_template(
                "error.html",
                code=404,
                title="This link has expired",
                message="Set-password links work once, for 3 days. Ask your practice's "
                "manager for a new one.",
            ),
            404,
        )
    return render_template("set_password.html", holder=holder, error=error), (400 if error else 200)


# --- the on-call roster ------------------------------------------------------------------


def _roster_page(slug: str | None, error: str | None = None, status: int = 200) -> tuple[str, int]:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            practice = _practice(session, slug)
            view = admin.roster(session, viewer(), practice)
            zone = ZoneInfo(practice.timezone)
            recent = [
                {
                    "id": d.id,
                    "code": d.code,
                    "by": d.started_by,
                    "at": d.started_at.astimezone(zone),
                }
                for d in drills.recent(session, practice)
            ]
            choices = practices_for(session, viewer()) if viewer().is_admin else []
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    return (
        render_template(
            "admin_roster.html",
            roster=view,
            drills=recent,
            practices=choices,
            practice_slug=view.practice_slug,
            practice_name=view.practice_name,
            error=error,
            nav="admin",
            tab="roster",
        ),
        status,
    )


@bp.get("/admin/roster")
@login_required
def roster() -> tuple[str, int]:
    return _roster_page(request.args.get("practice"))


@bp.post("/admin/roster")
@login_required
def save_roster() -> tuple[str, int] | Response:
    names = request.form.getlist("name")
    phones = request.form.getlist("phone")
    people = list(zip(names, phones, strict=False))
    order = request.form.get("move", "")
    # "Move up" / "Move down" / "Remove" buttons post the whole roster with one change.
    if order:
        verb, _, index_text = order.partition(":")
        index = int(index_text) if index_text.isdigit() else -1
        if 0 <= index < len(people):
            if verb == "up" and index > 0:
                people[index - 1], people[index] = people[index], people[index - 1]
            elif verb == "down" and index < len(people) - 1:
                people[index + 1], people[index] = people[index], people[index + 1]
            elif verb == "remove":
                del people[index]
    manager = (request.form.get("manager_name", ""), request.form.get("manager_phone", ""))
    slug = request.form.get("practice")
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            practice = _practice(session, slug)
            result = admin.save_roster(
                session, viewer(), practice.id, on_call=people, manager=manager, now=utcnow()
            )
            slug = practice.slug
    except admin.Invalid as exc:
        return _roster_page(slug, error=str(exc), status=400)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    if result.changed:
        flash("Roster saved. The next urgent page follows this order.", "ok")
    else:
        flash("Nothing changed.", "warn")
    return redirect(_here(slug or "", "admin.roster"))


# --- fire drills -------------------------------------------------------------------------


@bp.post("/admin/roster/drill")
@login_required
def run_drill() -> Response:
    """The roster page's Run a fire drill button."""
    runtime = runtime_of(current_app)
    slug = request.form.get("practice")
    try:
        with session_scope(runtime.sessions) as session:
            practice = _practice(session, slug)
            started = drills.run(session, runtime.templates, viewer(), practice, now=utcnow())
            slug = practice.slug
            drill_id = started.drill.id if started.drill is not None else None
            code = started.drill.code if started.drill is not None else ""
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    for message_id in started.message_ids:
        try:
            runtime.dispatcher.send_text(message_id)  # after the commit
        except Exception as exc:  # noqa: BLE001 - a broker failure is only a delay
            log.warning("drill text %s not queued (%s); the sweeper sends it", message_id, exc)
    if started.refusal is DrillRefusal.NO_ROSTER or drill_id is None:
        flash("Nobody is on call: add someone to the roster first.", "warn")
        return redirect(_here(slug or "", "admin.roster"))
    if started.refusal is DrillRefusal.ALREADY_RUNNING:
        flash(f"Drill {code} is still open: its answers so far.", "warn")
    else:
        count = len(started.message_ids)
        flash(f"Drill {code} texted to {count} on call. Answers appear here as they come.", "ok")
    return redirect(url_for("admin.drill", drill_id=drill_id))


@bp.get("/admin/drills/<int:drill_id>")
@login_required
def drill(drill_id: int) -> str:
    now = utcnow()
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            found, practice = drills.viewed(session, viewer(), drill_id)
            result = drills.result(session, practice, found, now)
            zone = ZoneInfo(practice.timezone)
            slug, name = practice.slug, practice.name
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    local_now = now.astimezone(zone)
    rows = [
        {
            "name": row.name,
            "answered_at": row.answered_at.astimezone(zone) if row.answered_at else None,
            "seconds": row.seconds,
            "in_time": row.in_time,
        }
        for row in result.rows
    ]
    return render_template(
        "admin_drill.html",
        drill=found,
        result=result,
        rows=rows,
        now=local_now,
        started_at=found.started_at.astimezone(zone),
        ends_at=found.ends_at.astimezone(zone),
        roster_href=_here(slug, "admin.roster"),
        practices=[],
        practice_slug=slug,
        practice_name=name,
        nav="admin",
        tab="roster",
    )


# --- saved replies -----------------------------------------------------------------------


def _replies_page(
    slug: str | None, error: str | None = None, status: int = 200, editing: int | None = None
) -> tuple[str, int]:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            practice = _practice(session, slug)
            rows = admin.saved_replies(session, viewer(), practice.id)
            choices = practices_for(session, viewer()) if viewer().is_admin else []
            ref = (practice.slug, practice.name)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    return (
        render_template(
            "admin_replies.html",
            replies=rows,
            practices=choices,
            practice_slug=ref[0],
            practice_name=ref[1],
            error=error,
            # What was typed goes back into the form it came from: the add form, or the
            # row being edited (left open).
            form=request.form if request.method == "POST" and editing is None else {},
            editing=editing,
            edit_form=request.form if editing is not None else {},
            nav="admin",
            tab="replies",
        ),
        status,
    )


@bp.get("/admin/replies")
@login_required
def replies() -> tuple[str, int]:
    return _replies_page(request.args.get("practice"))


@bp.post("/admin/replies")
@login_required
def add_reply() -> tuple[str, int] | Response:
    slug = request.form.get("practice")
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            practice = _practice(session, slug)
            admin.add_saved_reply(
                session,
                viewer(),
                practice.id,
                title=request.form.get("title", ""),
                body=request.form.get("body", ""),
                now=utcnow(),
            )
            slug = practice.slug
    except admin.Invalid as exc:
        return _replies_page(slug, error=str(exc), status=400)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    flash("Saved reply added.", "ok")
    return redirect(_here(slug or "", "admin.replies"))


@bp.post("/admin/replies/<int:reply_id>/edit")
@login_required
def edit_reply(reply_id: int) -> tuple[str, int] | Response:
    slug = ""
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            row = session.get(SavedReply, reply_id)
            slug = _slug_of(session, row.practice_id if row else None)
            edited = admin.edit_saved_reply(
                session,
                viewer(),
                reply_id,
                title=request.form.get("title", ""),
                body=request.form.get("body", ""),
                now=utcnow(),
            )
    except admin.Invalid as exc:
        return _replies_page(slug, error=str(exc), status=400, editing=reply_id)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    flash("Saved reply saved." if edited.changed else "Nothing changed.", "ok")
    return redirect(_here(slug, "admin.replies"))


@bp.post("/admin/replies/<int:reply_id>/remove")
@login_required
def remove_reply(reply_id: int) -> Response:
    try:
        with session_scope(runtime_of(current_app).sessions) as session:
            admin.remove_saved_reply(session, viewer(), reply_id, now=utcnow())
            row = session.get(SavedReply, reply_id)
            slug = _slug_of(session, row.practice_id if row else None)
    except (admin.NotFound, admin.NotAllowed) as exc:
        refuse(exc)
    flash("Saved reply removed.", "ok")
    return redirect(_here(slug, "admin.replies"))
