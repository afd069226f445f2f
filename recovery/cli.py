"""The `recovery` command line: run the whole loop locally, manage practices, try it out."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from click._termui_impl import ProgressBar
    from sqlalchemy.orm import Session, sessionmaker

    from recovery.models import Message, User
    from recovery.services.outreach import Dispatcher

from recovery.config import Settings
from recovery.simulation import missed_dial_action_form

__all__ = ["main", "migrate", "missed_dial_action_form"]

DEV_ENV_FILE = Path(".env")


@click.group()
def main() -> None:
    """Recovery: text every missed caller within a second, route the reply, log the outcome."""


# --- practices -------------------------------------------------------------------------


@main.group()
def practices() -> None:
    """Check or load a practices file (YAML)."""


@practices.command("check")
@click.argument("path", type=click.Path(path_type=Path))
def practices_check(path: Path) -> None:
    """Validate FILE without touching the database."""
    from recovery.schemas.practices import PracticesFileError, read_practices

    try:
        config = read_practices(path)
    except PracticesFileError as exc:
        raise click.ClickException(str(exc)) from None
    for practice in config.practices:
        click.echo(f"ok  {practice.slug}: {practice.name}, {', '.join(practice.numbers)}")


@practices.command("load")
@click.argument("path", type=click.Path(path_type=Path))
def practices_load(path: Path) -> None:
    """Create or update the practices in FILE (safe to run again)."""
    load_practices_file(Settings(), path)


@practices.command("secret")
@click.argument("slug")
@click.option(
    "--rotate",
    is_flag=True,
    help="Make a new secret; the old one keeps working for 24 hours, time to update the sender.",
)
def practices_secret(slug: str, rotate: bool) -> None:
    """Print the secret SLUG's booking system or PBX signs its webhooks with (making one if
    it has none). A request signed with it acts on SLUG only."""
    from recovery.db import make_engine, make_session_factory, session_scope, utcnow
    from recovery.services.errors import NotFound
    from recovery.services.webhook_secrets import SecretChange, practice_secret

    engine = make_engine(Settings().effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            try:
                found = practice_secret(session, slug, now=utcnow(), rotate=rotate)
            except NotFound as exc:
                raise click.ClickException(str(exc)) from None
            # Shown is audited too: whoever reads it can sign as the practice.
            audit_cli(session, f"practices secret {found.slug} {found.change.value}")
    finally:
        engine.dispose()
    click.echo(found.secret)
    if found.change is SecretChange.ROTATED and found.previous_until is not None:
        click.echo(
            f"the previous secret works until {found.previous_until:%Y-%m-%d %H:%M} UTC",
            err=True,
        )


def load_practices_file(settings: Settings, path: Path) -> None:
    from recovery.db import make_engine, make_session_factory, session_scope
    from recovery.schemas.practices import PracticesFileError, read_practices
    from recovery.services.practices import load_practices

    try:
        config = read_practices(path)
    except PracticesFileError as exc:
        raise click.ClickException(str(exc)) from None
    engine = make_engine(settings.effective_database_url)
    with session_scope(make_session_factory(engine)) as session:
        report = load_practices(session, config)
        audit_cli(
            session,
            f"practices load {path.name}: {len(report.created)} new, {len(report.updated)} updated",
        )
    engine.dispose()
    click.echo(f"loaded {path}: {len(report.created)} new, {len(report.updated)} updated")


# --- users -------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Staff who sign in to the task queue and page links."""


@users.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Shown on tasks and acknowledged pages.")
@click.option("--practice", "practice_slug", default=None, help="The practice's slug.")
@click.option(
    "--role",
    type=click.Choice(["staff", "clinician", "manager", "admin"]),
    default="staff",
    show_default=True,
)
@click.password_option(help="Prompted for (twice) when not given.")
def users_add(email: str, name: str, practice_slug: str | None, role: str, password: str) -> None:
    """Create a user who signs in with EMAIL."""
    from recovery.db import make_engine, make_session_factory, session_scope
    from recovery.models import Role
    from recovery.services.auth import AccountError, create_user

    engine = make_engine(Settings().effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = create_user(
                session,
                email=email,
                name=name,
                password=password,
                role=Role(role),
                practice_slug=practice_slug,
            )
            audit_cli(session, f"users add {user.id} {user.role.value}")
            click.echo(
                f"added {user.email} ({user.role.value}, {practice_slug or 'all practices'})"
            )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@users.command("list")
def users_list() -> None:
    """Every user: email, name, role, practice, active."""
    from recovery.db import make_engine, make_session_factory
    from recovery.services.auth import list_users

    engine = make_engine(Settings().effective_database_url)
    with make_session_factory(engine)() as session:
        rows = list_users(session)
    engine.dispose()
    for user, slug in rows:
        state = "active" if user.active else "inactive"
        click.echo(
            f"{user.email:<32} {user.name:<24} {user.role.value:<9} {slug or '*':<20} {state}"
        )
    if not rows:
        click.echo("no users yet: add one with `recovery users add`")


@users.command("set-password")
@click.argument("email")
@click.password_option(help="Prompted for (twice) when not given.")
def users_set_password(email: str, password: str) -> None:
    """Give EMAIL a new password (a forgotten one, or a first one handed over in person)."""
    from recovery.services.auth import AccountError, set_password

    try:
        user = change_user(email, "set-password", lambda s: set_password(s, email, password))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"new password set for {user.email}; their sessions have ended")


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Sign EMAIL out everywhere and refuse their password (the audit trail keeps them)."""
    from recovery.services.auth import set_active

    user = change_user(email, "deactivate", lambda s: set_active(s, email, False))
    click.echo(f"deactivated {user.email}")


@users.command("sign-out")
@click.argument("email")
def users_sign_out(email: str) -> None:
    """End every session of EMAIL now (a lost phone, a shared computer left signed in)."""
    from recovery.services.auth import end_sessions, find_user

    def sign_out(session: Session) -> User | None:
        user = find_user(session, email)
        if user is not None:
            end_sessions(user)
        return user

    user = change_user(email, "sign-out", sign_out)
    click.echo(f"signed {user.email} out everywhere")


@users.command("reset-2fa")
@click.argument("email")
def users_reset_second_factor(email: str) -> None:
    """Forget EMAIL's authenticator app and recovery codes: they set up a new one at their
    next sign-in (check who is asking first: this is what an attacker would ask for)."""
    from recovery.services.auth import reset_second_factor

    user = change_user(email, "reset-2fa", lambda s: reset_second_factor(s, email))
    click.echo(f"{user.email} sets up a new sign-in code at their next sign-in")


def change_user(email: str, verb: str, change: Callable[[Session], User | None]) -> User:
    """Apply CHANGE to EMAIL's account in one transaction and audit it as `users VERB`;
    no such user is an error, and nothing is written."""
    from recovery.db import make_engine, make_session_factory, session_scope

    engine = make_engine(Settings().effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = change(session)
            if user is not None:
                audit_cli(session, f"users {verb} {user.id}")
    finally:
        engine.dispose()
    if user is None:
        raise click.ClickException(f"no user {email}")
    return user


def audit_cli(session: Session, what: str) -> None:
    """Every change made from the command line is in the audit log, with the OS account
    that made it (there is no signed-in user to name)."""
    import getpass

    from recovery.db import utcnow
    from recovery.models import AuditAction
    from recovery.services.audit import record

    try:
        actor = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        actor = f"uid {os.getuid()}"
    record(session, None, AuditAction.CLI_CHANGE, now=utcnow(), detail=f"{what} by {actor}")


# --- paging ----------------------------------------------------------------------------


@main.group()
def paging() -> None:
    """Urgent pages: fire drills of the on-call roster."""


@paging.command("drill")
@click.argument("practice_slug")
@click.option(
    "--wait",
    "wait_s",
    type=int,
    default=0,
    help="Seconds to wait for answers, printing each as it comes (default: do not wait).",
)
def paging_drill(practice_slug: str, wait_s: int) -> None:
    """Text PRACTICE's on-call roster a TEST page and record who answers ACK, how fast.

    Opens no episode and creates no task. The running worker sends the texts; the result
    is on the roster's admin page (and here, with --wait)."""
    from sqlalchemy import select

    from recovery.config import TEMPLATES_DIR
    from recovery.db import session_scope, utcnow
    from recovery.domain.drills import DrillRefusal
    from recovery.domain.templates import SmsTemplates
    from recovery.models import Practice
    from recovery.services import drills
    from workers.dispatch import CeleryDispatcher

    settings = running_settings(Settings())
    sessions, dispose = _database()
    try:
        with session_scope(sessions) as session:
            practice = session.scalars(
                select(Practice).where(Practice.slug == practice_slug)
            ).first()
            if practice is None:
                raise click.ClickException(f"no practice {practice_slug}")
            started = drills.start_drill(
                session,
                SmsTemplates(TEMPLATES_DIR / "sms"),
                practice,
                started_by="the command line",
                now=utcnow(),
            )
            if started.drill is not None and started.refusal is None:
                audit_cli(session, f"paging drill {started.drill.code} for {practice_slug}")
        if started.refusal is DrillRefusal.NO_ROSTER or started.drill is None:
            raise click.ClickException(f"{practice_slug} has nobody on call: nobody to drill")
        drill = started.drill
        if started.refusal is DrillRefusal.ALREADY_RUNNING:
            click.echo(f"drill {drill.code} is still open (until {drill.ends_at:%H:%M} UTC)")
        else:
            _dispatch_texts(CeleryDispatcher.from_settings(settings), started.message_ids)
            click.echo(
                f"drill {drill.code}: TEST page texted to {len(drill.roster)} on call "
                f"({', '.join(str(p['name']) for p in drill.roster)})"
            )
        click.echo(f"results: {settings.public_base_url}/admin/drills/{drill.id}")
        _wait_for_answers(sessions, drill.id, wait_s)
    finally:
        dispose()


def _dispatch_texts(dispatcher: Dispatcher, message_ids: list[int]) -> None:
    for message_id in message_ids:
        try:
            dispatcher.send_text(message_id)
        except Exception as exc:  # noqa: BLE001 - the committed rows wait for the sweeper
            click.echo(f"text {message_id} not queued ({exc}); the worker's sweeper sends it")


def _wait_for_answers(sessions: sessionmaker[Session], drill_id: int, wait_s: int) -> None:
    from recovery.db import utcnow
    from recovery.models import Practice
    from recovery.models.drill import Drill
    from recovery.services import drills

    deadline = time.monotonic() + wait_s
    shown: set[str] = set()
    while True:
        with sessions() as session:
            drill = session.get(Drill, drill_id)
            assert drill is not None
            practice = session.get(Practice, drill.practice_id)
            assert practice is not None
            result = drills.result(session, practice, drill, utcnow())
        for row in result.rows:
            if row.seconds is not None and row.name not in shown:
                shown.add(row.name)
                late = "" if row.in_time else " (late)"
                click.echo(f"  {row.name}: answered after {row.seconds} s{late}")
        if len(shown) == len(result.rows) or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if wait_s:
        missing = [row.name for row in result.rows if row.seconds is None]
        click.echo(
            f"{result.answered} of {len(result.rows)} answered"
            + (f"; no answer yet from {', '.join(missing)}" if missing else "")
        )


# --- the audit trail --------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The audit trail (audit_events): append-only and hash-chained."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the whole chain; name the first edited, inserted or deleted row (exit 1)."""
    from recovery.services.audit import verify

    sessions, dispose = _database()
    try:
        with sessions() as session:
            checked, broken = verify(session)
    finally:
        dispose()
    if broken is None:
        click.echo(f"audit trail intact: {checked} rows, chained")
        return
    where = f"seq {broken.seq}" if broken.seq is not None else "no seq"
    row = f", row id {broken.row_id}" if broken.row_id is not None else ""
    click.echo(f"audit trail broken: {broken.kind} at {where}{row}: {broken.reason}", err=True)
    sys.exit(1)


# --- API tokens and the report -------------------------------------------------------------


@main.group()
def tokens() -> None:
    """API tokens: each reads one practice's report and CSV through /api."""


def _database() -> tuple[sessionmaker[Session], Callable[[], None]]:
    from recovery.db import make_engine, make_session_factory

    engine = make_engine(Settings().effective_database_url)
    return make_session_factory(engine), engine.dispose


@tokens.command("create")
@click.option("--practice", "practice_slug", required=True, help="The practice's slug.")
@click.option("--name", required=True, help='What will use it: "BI dashboard".')
def tokens_create(practice_slug: str, name: str) -> None:
    """Make a token; it is printed once, on the last line, and stored only as a hash."""
    from recovery.db import session_scope, utcnow
    from recovery.services.tokens import TokenError, create_token

    sessions, dispose = _database()
    try:
        with session_scope(sessions) as session:
            made = create_token(session, practice_slug=practice_slug, name=name, now=utcnow())
            audit_cli(session, f"tokens create {made.id} for {practice_slug}")
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        dispose()
    click.echo(f"token {made.id} for {practice_slug} ({name}); it is shown only now:")
    click.echo(made.token)


@tokens.command("list")
def tokens_list() -> None:
    """Every token: id, practice, name, its first characters, made, last used, revoked."""
    from recovery.services.tokens import list_tokens

    sessions, dispose = _database()
    try:
        with sessions() as session:
            rows = list_tokens(session)
            for token, slug in rows:
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                click.echo(
                    f"{token.id:<5} {slug:<20} {token.name:<24} {token.prefix}…  "
                    f"made {token.created_at:%Y-%m-%d}  used {used}  {state}"
                )
    finally:
        dispose()
    if not rows:
        click.echo("no tokens yet: make one with `recovery tokens create`")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Stop TOKEN_ID working at once (it stays listed, for the audit trail)."""
    from recovery.db import session_scope, utcnow
    from recovery.services.tokens import TokenError, revoke_token

    sessions, dispose = _database()
    try:
        with session_scope(sessions) as session:
            revoke_token(session, token_id, now=utcnow())
            audit_cli(session, f"tokens revoke {token_id}")
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        dispose()
    click.echo(f"revoked token {token_id}")


@main.command("report")
@click.option("--practice", "practice_slug", required=True, help="The practice's slug.")
@click.option("--from", "start", required=True, help="First day, YYYY-MM-DD (practice's zone).")
@click.option("--to", "end", required=True, help="Last day, YYYY-MM-DD (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="The API's JSON instead of text.")
def report(practice_slug: str, start: str, end: str, as_json: bool) -> None:
    """The recovery report's figures for a range, beside the range before it."""
    from recovery.db import utcnow
    from recovery.domain.periods import BadRange, custom, parse_date
    from recovery.services.reports import NotFound, build_report, practice_by_slug

    try:
        period = custom(parse_date(start, "--from"), parse_date(end, "--to"))
    except BadRange as exc:
        raise click.ClickException(str(exc)) from None
    sessions, dispose = _database()
    try:
        with sessions() as session:
            try:
                practice = practice_by_slug(session, practice_slug)
            except NotFound:
                raise click.ClickException(f"no practice {practice_slug!r}") from None
            figures = build_report(session, [practice], period, now=utcnow()).as_dict()
    finally:
        dispose()
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(report_text(figures))


REPORT_LINES = (
    ("missed calls", "missed_calls", "count"),
    ("recovered (booked or resolved)", "recovered", "count"),
    ("recovery rate", "recovery_rate", "rate"),
    ("booked", "booked", "count"),
    ("resolved", "resolved", "count"),
    ("escalated", "escalated", "count"),
    ("opted out", "opted_out", "count"),
    ("unrecovered", "unrecovered", "count"),
    ("still open", "open", "count"),
    ("revenue recovered", "revenue_recovered", "usd"),
    ("answered calls", "answered_calls", "count"),
    ("answer rate", "answer_rate", "rate"),
    ("first text p50", "ttft_p50_ms", "ms"),
    ("first text p95", "ttft_p95_ms", "ms"),
    ("first text max", "ttft_max_ms", "ms"),
    ("self-scheduling conversion", "self_scheduling_conversion", "rate"),
    ("urgent pages", "urgent_pages", "count"),
    ("urgent reply to page p50", "urgent_page_latency_p50_ms", "ms"),
    ("urgent reply to ack p50", "urgent_ack_latency_p50_ms", "ms"),
)


def _figure(value: object, kind: str) -> str:
    if value is None:
        return "-"
    assert isinstance(value, int | float)
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "usd":
        return f"${value:,.0f}"
    if kind == "ms":
        return f"{value:,.0f} ms"
    return f"{value:,}"


def report_text(figures: dict[str, object]) -> str:
    previous = figures["previous"]
    assert isinstance(previous, dict)
    lines = [
        f"{figures['practice']}: {figures['from']} to {figures['to']} ({figures['timezone']}); "
        f"before: {previous['from']} to {previous['to']}",
    ]
    for label, key, kind in REPORT_LINES:
        now, before = _figure(figures[key], kind), _figure(previous[key], kind)
        lines.append(f"  {label:<32} {now:>12}   before {before}")
    tasks = figures["tasks"]
    assert isinstance(tasks, dict)
    for queue, counts in tasks.items():
        share = _figure(counts["done_within_sla_share"], "rate")
        lines.append(
            f"  tasks {queue:<26} {counts['created']:>5} made, {counts['open']} open, "
            f"{counts['breached']} breached, within SLA {share}"
        )
    return "\n".join(lines)


# --- the leak audit ------------------------------------------------------------------


@main.command("audit-calls")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "log_format",
    type=click.Choice(["asterisk", "twilio", "simple"]),
    default=None,
    help="The export's format (default: told from its header or first row).",
)
@click.option(
    "--practice",
    "practice_slug",
    default=None,
    help="Read times on this practice's clock and hours; its visit value is the default.",
)
@click.option(
    "--timezone",
    default=None,
    help="Without --practice: the IANA zone to read times in (e.g. America/Chicago).",
)
@click.option("--json", "as_json", is_flag=True, help="The figures as JSON.")
@click.option(
    "--callback-window-days",
    type=int,
    default=7,
    show_default=True,
    help="A missed caller who gets through within this many days was reached.",
)
@click.option("--visit-value", type=int, default=None, help="A new patient's visit, in USD.")
@click.option("--new-patient-share", type=float, default=0.30, show_default=True)
@click.option("--live-booking-rate", type=float, default=0.70, show_default=True)
@click.option("--callback-booking-rate", type=float, default=0.45, show_default=True)
@click.option("--operating-days", type=int, default=250, show_default=True)
def audit_calls(
    path: Path,
    log_format: str | None,
    practice_slug: str | None,
    timezone: str | None,
    as_json: bool,
    callback_window_days: int,
    visit_value: int | None,
    new_patient_share: float,
    live_booking_rate: float,
    callback_booking_rate: float,
    operating_days: int,
) -> None:
    """What missed calls cost: audit a call-log export (Asterisk/FreePBX CDR CSV, a Twilio
    call-log CSV, or time,from,to,status,duration). Nothing is stored."""
    from recovery.domain.call_logs import CallLogFormat
    from recovery.domain.hours import BusinessHours
    from recovery.services.leak_audit import (
        Assumptions,
        BadAssumption,
        NotACallLog,
        audit_call_log,
    )

    hours: BusinessHours | None = None
    zone = None
    practice_name = None
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.ClickException(f"--timezone: {timezone!r} is not a known zone") from None
    if practice_slug is not None:
        from recovery.services.reports import NotFound, practice_by_slug

        sessions, dispose = _database()
        try:
            with sessions() as session:
                try:
                    practice = practice_by_slug(session, practice_slug)
                except NotFound:
                    raise click.ClickException(f"no practice {practice_slug!r}") from None
                hours, practice_name = practice.business_hours(), practice.name
                if visit_value is None:
                    visit_value = practice.visit_value
        finally:
            dispose()
    try:
        assumptions = Assumptions(
            new_patient_share=new_patient_share,
            live_booking_rate=live_booking_rate,
            callback_booking_rate=callback_booking_rate,
            operating_days=operating_days,
            visit_value_usd=visit_value,
            callback_window_days=callback_window_days,
        )
    except BadAssumption as exc:
        raise click.ClickException(str(exc)) from None

    size = path.stat().st_size
    # A bar only for a person at a terminal: a pipe or a log file gets the figures alone.
    show_bar = sys.stderr.isatty() and size > 0
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        bar = (
            click.progressbar(length=size, label=f"Auditing {path.name}", file=sys.stderr)
            if show_bar
            else None
        )
        try:
            result = audit_call_log(
                _counting(handle, bar),
                assumptions=assumptions,
                forced=CallLogFormat(log_format) if log_format else None,
                hours=hours,
                zone=zone,
            )
        except NotACallLog as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            if bar is not None:
                bar.update(size)
                bar.render_finish()
    figures = result.as_dict()
    figures["file"] = path.name
    figures["practice"] = practice_slug
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(audit_text(figures, practice_name))


def _counting(handle: Iterable[str], bar: ProgressBar[int] | None) -> Iterator[str]:
    """The file's lines, moving the bar along every few thousand (by characters read,
    which is bytes for the ASCII a call log is)."""
    if bar is None:
        yield from handle
        return
    done = 0
    for n, line in enumerate(handle, start=1):
        done += len(line)
        if n % 20_000 == 0:
            bar.update(done - bar.pos)
        yield line


def audit_text(figures: dict[str, Any], practice_name: str | None = None) -> str:
    a = figures["assumptions"]
    est = figures["estimate"] or {}
    rate = figures["missed_rate"]
    lines = [
        f"{figures['file']}: {figures['format_label']}"
        + (f", on {practice_name}'s clock ({figures['timezone']})" if practice_name else ""),
        f"  calls from {figures['first_call']} to {figures['last_call']} "
        f"({figures['days_with_calls']} days with calls)",
        f"  {'calls':<34} {figures['calls']:>10,}",
        f"  {'missed':<34} {figures['missed']:>10,}   "
        + ("" if rate is None else f"{rate * 100:.1f}% of calls"),
    ]
    share = figures["after_hours_share"]
    if share is None:
        lines.append(f"  {'after hours':<34} {'-':>10}   give --practice for its hours")
    else:
        missed_share = figures["after_hours_missed_share"]
        lines.append(
            f"  {'after hours':<34} {share * 100:>9.1f}%   of calls"
            + ("" if missed_share is None else f"; {missed_share * 100:.1f}% of missed calls")
        )
    lines += [
        f"  {'callers who missed a call':<34} {figures['callers_missed']:>10,}",
        f"  {'callers never reached':<34} {figures['callers_never_reached']:>10,}   "
        f"no answered call within {a['callback_window_days']} days",
        f"  {'too soon to tell':<34} {figures['callers_window_open']:>10,}   "
        "missed in the log's last days",
        f"  {'missed, number withheld':<34} {figures['withheld_missed']:>10,}",
    ]
    leak = figures["annual_leak_usd"]
    if leak is None:
        lines.append(f"  {'annual leak estimate':<34} {'-':>10}   give --visit-value")
    else:
        lines.append(f"  {'annual leak estimate':<34} {f'${leak:,}':>10}")
    if est:
        lines.append(
            f"    = {est['missed_per_operating_day']:.1f} missed per operating day "
            f"({est['operating_days_in_log']} in the log) x {a['new_patient_share'] * 100:.0f}% "
            f"new patients x ({a['live_booking_rate'] * 100:.0f}% live - "
            f"{a['callback_booking_rate'] * 100:.0f}% callback booking) x "
            f"${a['visit_value_usd'] or 0:,} x {a['operating_days']} operating days"
        )
    skipped = figures["outbound_skipped"] + figures["internal_skipped"]
    if skipped:
        lines.append(
            f"  not counted: {figures['outbound_skipped']:,} calls the practice made, "
            f"{figures['internal_skipped']:,} internal"
        )
    if figures["malformed"]:
        listed = ", ".join(f"{m['line']} ({m['problem']})" for m in figures["malformed_lines"][:10])
        more = figures["malformed"] - min(10, len(figures["malformed_lines"]))
        lines.append(
            f"  {figures['malformed']:,} rows could not be read: lines {listed}"
            + (f" and {more:,} more" if more > 0 else "")
        )
    if figures["out_of_order"]:
        lines.append(
            f"  {figures['out_of_order']:,} calls were far out of time order; "
            "'never reached' may be off for their callers"
        )
    return "\n".join(lines)


# --- run -------------------------------------------------------------------------------


@main.command(
    "celery",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def celery_command(args: tuple[str, ...]) -> None:
    """Celery's own command line on the product's app: `recovery celery worker ...`,
    `recovery celery beat ...`, `recovery celery inspect active`.

    The app is built here, from Settings, rather than found by `celery -A` in a module that
    builds it on import: no module of ours does anything when imported.
    """
    from recovery.db import use_clock_offset_file
    from workers.celery_app import make_celery

    settings = Settings()
    use_clock_offset_file(settings.test_clock_file)
    raise SystemExit(make_celery(settings).start(argv=list(args)) or 0)


@main.command("run")
@click.option("--port", type=int, default=None, help="Web port (default: PORT or 5000).")
def run(port: int | None) -> None:
    """Migrate, load practices, and run web + worker + beat together (Ctrl-C stops all)."""
    from recovery.supervisor import Supervisor

    # Whatever the processes below create (the SQLite file, the console outbox, the
    # broker's queue files) is for this account's eyes only: it holds patients' numbers.
    os.umask(0o077)
    ensure_dev_env(DEV_ENV_FILE)
    settings = Settings()
    port = port or settings.port
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    secure_local_files(DEV_ENV_FILE, settings.var_dir)
    migrate(settings)
    if settings.practices_file:
        load_practices_file(settings, Path(settings.practices_file))
    bin_dir = Path(sys.executable).parent
    public_base_url = local_base_url(settings.public_base_url, port)
    env = {
        **os.environ,
        "PORT": str(port),
        "PUBLIC_BASE_URL": public_base_url,
        "PYTHONUNBUFFERED": "1",
        # /metrics adds up what the web's and the worker's processes counted, from here.
        "PROMETHEUS_MULTIPROC_DIR": str(fresh_metrics_dir(settings)),
    }
    write_server_file(settings, public_base_url)
    supervisor = Supervisor()
    supervisor.add(
        "web",
        f"{bin_dir}/gunicorn --bind 127.0.0.1:{port} --workers 2 --access-logfile - "
        "--logger-class recovery.web.access_log.AccessLogger "
        "--no-control-socket "
        "'recovery.web:create_app()'",
        env=env,
    )
    supervisor.add(
        "worker",
        # Threads, not processes: a worker mostly waits on the SMS provider.
        f"{bin_dir}/recovery celery worker --loglevel INFO "
        "--pool threads --concurrency 4 --queues celery,periodic",
        env=env,
    )
    supervisor.add("beat", f"{bin_dir}/recovery celery beat --loglevel WARNING", env=env)
    click.echo(f"Recovery is starting on http://127.0.0.1:{port} (Ctrl-C stops it).")
    if settings.sms_provider == "console":
        click.echo(f"Try it in a browser:  {public_base_url}/simulator")
    click.echo("Or from another terminal:  .venv/bin/recovery simulate missed-call")
    try:
        returncode = supervisor.run()
    finally:
        server_file(settings).unlink(missing_ok=True)
    sys.exit(returncode)


def fresh_metrics_dir(settings: Settings) -> Path:
    """An empty folder for this run's counts: the last run's processes are gone, and
    prometheus-client would add their files to this run's figures."""
    folder = (settings.var_dir / "prometheus").resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def local_base_url(configured: str, port: int) -> str:
    """On a laptop the URL follows the port `run` was given; a real public URL (a tunnel,
    a proxy) is kept as it is, whatever port we listen on behind it."""
    host = urlsplit(configured).hostname
    if host in ("127.0.0.1", "localhost", "::1", None):
        return f"http://127.0.0.1:{port}"
    return configured


def server_file(settings: Settings) -> Path:
    return settings.var_dir / "server.json"


def write_server_file(settings: Settings, public_base_url: str) -> None:
    """Where `recovery run` is listening, for `recovery simulate` in another terminal."""
    server_file(settings).write_text(
        json.dumps({"public_base_url": public_base_url, "pid": os.getpid()}), encoding="utf-8"
    )


def running_settings(settings: Settings) -> Settings:
    """The settings of the server `recovery run` started, when one is running: the same
    base URL, so simulated webhooks reach it and are signed over the URL it checks."""
    path = server_file(settings)
    try:
        running = json.loads(path.read_text(encoding="utf-8"))
        os.kill(int(running["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return settings
    return settings.model_copy(update={"public_base_url": str(running["public_base_url"])})


def migrate(settings: Settings) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["database_url"] = settings.effective_database_url
    config.attributes["configure_logger"] = False
    # A data migration that encrypts existing rows uses these settings' PHI keys.
    config.attributes["settings"] = settings
    command.upgrade(config, "head")


def secure_local_files(env_file: Path, var_dir: Path) -> None:
    """Repair what older versions created readable by every local account: the .env (the
    secrets), and var/ (the database, the outbox of texts, the broker's files)."""
    if env_file.exists():
        env_file.chmod(0o600)
    if not var_dir.exists():
        return
    var_dir.chmod(0o700)
    for child in var_dir.rglob("*"):
        if child.is_symlink():
            continue
        child.chmod(0o700 if child.is_dir() else 0o600)


def ensure_dev_env(path: Path) -> None:
    """A first `make run` writes a local .env with fresh secrets, so the simulate command
    (another process) signs its webhooks with the same ones the server checks. An older
    .env without a PHI key gets one (what it stored stays readable: the legacy key)."""
    from recovery.crypto import new_key

    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        if not any(line.startswith("PHI_ENCRYPTION_KEYS=") for line in lines):
            with path.open("a", encoding="utf-8") as env:
                env.write(f"PHI_ENCRYPTION_KEYS={new_key()}\n")
            click.echo(f"added PHI_ENCRYPTION_KEYS to {path}: run `recovery keys rotate`")
        return
    # Created 0600 from the start: between a write and a later chmod, anyone could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    path.write_text(
        "# Written by the first `recovery run`; the embedded default. See README.md.\n"
        f"SECRET_KEY={secrets.token_hex(32)}\n"
        f"WEBHOOK_SECRET={secrets.token_hex(32)}\n"
        f"PHI_ENCRYPTION_KEYS={new_key()}\n"
        # A fresh install has nothing under the key older versions derived from SECRET_KEY.
        "RECOVERY_PHI_LEGACY_KEY=0\n"
        "TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000\n"
        f"TWILIO_AUTH_TOKEN={secrets.token_hex(16)}\n"
        "PUBLIC_BASE_URL=http://127.0.0.1:5000\n"
        "RECOVERY_PRACTICES_FILE=examples/practices.yaml\n",
        encoding="utf-8",
    )
    click.echo(f"wrote {path} with fresh local secrets")


# --- keys --------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """The keys that encrypt patients' words at rest (PHI_ENCRYPTION_KEYS)."""


@keys.command("new")
def keys_new() -> None:
    """Print a fresh key. Put it first in PHI_ENCRYPTION_KEYS (keep the old ones after it),
    restart, then run `recovery keys rotate`."""
    from recovery.crypto import new_key

    click.echo(new_key())


@keys.command("rotate")
@click.option("--batch", "batch_size", default=500, show_default=True, help="Rows per commit.")
def keys_rotate(batch_size: int) -> None:
    """Re-encrypt everything stored under an older key with the first key, in batches
    (safe to stop and run again: what is done stays done)."""
    from recovery.crypto import MissingKey, PhiCipher
    from recovery.db import session_scope
    from recovery.services.keys import rotate

    settings = Settings()
    try:
        cipher = PhiCipher.from_settings(settings)
    except MissingKey as exc:
        raise click.ClickException(str(exc)) from None
    sessions, dispose = _database()
    try:
        report = rotate(sessions, cipher, batch_size=batch_size, progress=click.echo)
        with session_scope(sessions) as session:
            audit_cli(
                session,
                f"keys rotate: {report.rotated} re-encrypted, {report.current} current, "
                f"{report.unreadable} unreadable",
            )
    finally:
        dispose()
    click.echo(
        f"re-encrypted {report.rotated}, already under the first key {report.current}, "
        f"unreadable {report.unreadable}"
    )
    if report.unreadable:
        raise click.ClickException(
            f"{report.unreadable} values no configured key opens (see the lines above)"
        )
    if settings.phi_legacy_secrets:
        click.echo("nothing is left under the legacy key: set RECOVERY_PHI_LEGACY_KEY=0")


# --- simulate --------------------------------------------------------------------------


@main.group()
def simulate() -> None:
    """Play the phone system against a running Recovery."""


@simulate.command("missed-call")
@click.option("--from", "caller", default="+15125550199", show_default=True)
@click.option("--to", "called", default="+15125550100", show_default=True)
@click.option(
    "--url",
    default=None,
    help="Base URL of the running server (default: where `recovery run` listens, else "
    "PUBLIC_BASE_URL).",
)
@click.option(
    "--via",
    type=click.Choice(["twilio", "generic"]),
    default=None,
    help="Which webhook to post: Twilio's <Dial action> (needs TWILIO_AUTH_TOKEN) or the "
    "generic JSON one (needs WEBHOOK_SECRET). Default: twilio if a token is set.",
)
@click.option("--wait/--no-wait", default=True, help="Wait for the text and show it.")
def simulate_missed_call(
    caller: str, called: str, url: str | None, via: str | None, wait: bool
) -> None:
    """Post a correctly signed missed-call webhook, then show the text it produced."""
    from recovery import simulation

    settings = _simulation_settings(url)
    via = via or ("twilio" if settings.twilio_auth_token else "generic")
    sent_at = time.monotonic()
    if via == "twilio":
        call_id = "CA" + secrets.token_hex(16)
        response = post_twilio_dial_action(
            settings, settings.public_base_url, call_id, caller, called
        )
    else:
        generic = settings.model_copy(update={"twilio_auth_token": ""})
        try:
            signed = simulation.missed_call(generic, caller, called, _line_secret(called))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        response = _post_signed(settings.public_base_url, signed)
        call_id = signed.reference
    click.echo(f"POST via {via} -> {response.status_code} {response.text.strip()[:300]}")
    if response.status_code >= 300:
        raise click.ClickException("the server refused the webhook (see above)")
    if wait:
        show_first_text(settings, "twilio" if via == "twilio" else "generic", call_id, sent_at)


def _line_secret(line: str) -> str | None:
    """The webhook secret of the practice that owns LINE (made, and audited, if it had
    none): the generic webhook signed as that practice's PBX would sign it."""
    from recovery.db import make_engine, make_session_factory, session_scope, utcnow
    from recovery.services.webhook_secrets import SecretChange, line_secret

    engine = make_engine(Settings().effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            found = line_secret(session, line, now=utcnow())
            if found is not None and found.change is SecretChange.CREATED:
                audit_cli(session, f"practices secret {found.slug} created")
    finally:
        engine.dispose()
    return found.secret if found else None


@simulate.command("reply")
@click.option("--from", "sender", default="+15125550199", show_default=True)
@click.option(
    "--to",
    "line",
    default=None,
    help="The practice line to text (default: the one this number last called).",
)
@click.option(
    "--url",
    default=None,
    help="Base URL of the running server (default: where `recovery run` listens, else "
    "PUBLIC_BASE_URL).",
)
@click.argument("text")
def simulate_reply(sender: str, line: str | None, url: str | None, text: str) -> None:
    """Text TEXT to a practice line as a patient (or an on-call clinician: "ACK 1234"),
    then show what it became: the texts sent back, a task, a page."""
    from recovery import simulation

    settings = _simulation_settings(url)
    line = line or last_line_called(settings, sender) or DEFAULT_LINE
    try:
        signed = simulation.text_message(settings, sender, line, text)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    response = _post_signed(settings.public_base_url, signed)
    click.echo(f"POST /webhooks/twilio/sms (to {line}) -> {response.status_code}")
    if response.status_code >= 300:
        raise click.ClickException(response.text.strip()[:300])
    show_reply_outcome(settings, signed.reference)


DEFAULT_LINE = "+15125550100"


def _simulation_settings(url: str | None) -> Settings:
    settings = running_settings(Settings())
    if url:
        # An explicit --url is where the server is and what it signs over.
        settings = settings.model_copy(update={"public_base_url": url.rstrip("/")})
    return settings


def last_line_called(settings: Settings, caller: str) -> str | None:
    from recovery.db import make_engine, make_session_factory
    from recovery.domain.phones import parse_number
    from recovery.services.simulator import line_called_last

    number = parse_number(caller).e164
    if number is None:
        return None
    engine = make_engine(settings.effective_database_url)
    try:
        with make_session_factory(engine)() as session:
            return line_called_last(session, number)
    finally:
        engine.dispose()


def _post_signed(base: str, signed: object) -> requests.Response:
    from recovery.simulation import SignedPost

    assert isinstance(signed, SignedPost)
    data: dict[str, str] | bytes = signed.form if signed.form is not None else (signed.body or b"")
    return _post(base + signed.path, data=data, headers=signed.headers)


def post_signed_form(
    settings: Settings, base: str, path: str, form: dict[str, str]
) -> requests.Response:
    """POST a form as Twilio would: signed with the auth token over PUBLIC_BASE_URL + path."""
    from recovery.simulation import twilio_signature

    signature = twilio_signature(settings, path, form)
    return _post(base + path, data=form, headers={"X-Twilio-Signature": signature})


def _post(url: str, data: dict[str, str] | bytes, headers: dict[str, str]) -> requests.Response:
    try:
        return requests.post(url, data=data, headers=headers, timeout=10)
    except requests.ConnectionError:
        raise click.ClickException(
            f"nothing answers at {url}: is Recovery running (`make run`), and is --url right?"
        ) from None


def _evidence(settings: Settings, inbound: Message) -> str:
    """ " (synonym:appointment)": what matched, when this process holds the PHI key."""
    from recovery.crypto import MissingKey, PhiCipher

    try:
        return f" ({PhiCipher.from_settings(settings).decrypt(inbound.intent_evidence or '')})"
    except (MissingKey, ValueError):
        return ""


def show_reply_outcome(settings: Settings, sid: str) -> None:
    from sqlalchemy import select

    from recovery.db import make_engine, make_session_factory
    from recovery.domain.messages import waiting_words
    from recovery.models import Direction, Episode, Message, Page, Task

    sessions = make_session_factory(make_engine(settings.effective_database_url))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sessions() as session:
            inbound = session.scalar(select(Message).where(Message.provider_sid == sid))
            if inbound is None or inbound.intent is None:
                time.sleep(0.1)
                continue
            time.sleep(0.5)  # let the worker send what the routing queued
            session.expire_all()
            click.echo(f"understood: {inbound.intent}{_evidence(settings, inbound)}")
            answers = session.scalars(
                select(Message)
                .where(
                    Message.created_at >= inbound.created_at,
                    Message.id > inbound.id,
                    Message.direction == Direction.OUTBOUND,
                )
                .order_by(Message.id)
            )
            for message in answers:
                status = waiting_words(message.status, message.error_message)
                click.echo(f"\n[{message.kind}, {status}] to {message.to_number}:")
                click.echo(message.body)
            if inbound.episode_id is not None:
                episode = session.get(Episode, inbound.episode_id)
                assert episode is not None
                for task in session.scalars(select(Task).where(Task.episode_id == episode.id)):
                    click.echo(
                        f"\ntask #{task.id}: {task.queue.value} queue, {task.status.value}, "
                        f"due {task.due_at:%Y-%m-%d %H:%M} UTC"
                    )
                for page in session.scalars(select(Page).where(Page.episode_id == episode.id)):
                    click.echo(
                        f"\npage {page.code}: {page.status.value}"
                        + (
                            f", acknowledged by {page.acknowledged_by}"
                            if page.acknowledged_by
                            else ""
                        )
                    )
                outcome = episode.outcome.value if episode.outcome else "open"
                click.echo(f"\nepisode #{episode.id}: {outcome}")
            return
    raise click.ClickException("the reply was not routed within 10 s: is the worker running?")


def post_twilio_dial_action(
    settings: Settings, base: str, call_sid: str, caller: str, called: str
) -> requests.Response:
    from recovery.simulation import DIAL_ACTION_PATH, PLACEHOLDER_ACCOUNT_SID

    account_sid = settings.twilio_account_sid or PLACEHOLDER_ACCOUNT_SID
    return post_signed_form(
        settings,
        base,
        DIAL_ACTION_PATH,
        missed_dial_action_form(account_sid, call_sid, caller, called),
    )


def show_first_text(settings: Settings, provider: str, call_id: str, sent_at: float) -> None:
    from sqlalchemy import select

    from recovery.db import make_engine, make_session_factory
    from recovery.domain.messages import MessageKind
    from recovery.models import CallEvent, Message

    sessions = make_session_factory(make_engine(settings.effective_database_url))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sessions() as session:
            call = session.scalar(
                select(CallEvent).where(
                    CallEvent.provider == provider, CallEvent.provider_call_id == call_id
                )
            )
            if call is not None and call.skip_reason:
                click.echo(f"no text for this call: {call.skip_reason}")
                return
            message = None
            if call is not None and call.episode_id is not None:
                message = session.scalar(
                    select(Message).where(
                        Message.episode_id == call.episode_id,
                        Message.kind == MessageKind.FIRST_TEXT,
                    )
                )
            if message is not None and message.accepted_at is not None:
                elapsed = (time.monotonic() - sent_at) * 1000
                click.echo(
                    f"text {message.status.value} ({message.provider}) in {elapsed:.0f} ms, "
                    f"from {message.from_number} to {message.to_number}:\n\n{message.body}\n"
                )
                return
        time.sleep(0.1)
    raise click.ClickException(
        "no text was sent within 10 s: is the worker running? (`make run` starts it)"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
