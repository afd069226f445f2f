"""The leak audit: from a call-log export, how many calls were missed, when, how many
callers were never reached, and what that costs a year.

A manager asks this before installing anything, with whatever their phone system exports,
and a busy practice's year is a million rows; so the audit streams. It reads one row at a
time (recovery.domain.call_logs) and adds it to counters of fixed size (the weekday x hour
grid, the counts, the dates with calls); the only thing that grows with the file is the
state kept per caller (one number per caller), which "never reached" cannot do without.

"Never reached" needs the calls of one caller in time order, and exports come in either
order (Asterisk appends as calls end, oldest first; Twilio's export is newest first), with
small disorder (Asterisk writes a row when the call ends, so a long call lands after
shorter ones that started later). The audit looks at the first rows to tell the order, then
passes the calls through a bounded reorder buffer; a call that arrives later than the
buffer can mend is counted in `out_of_order` and still used.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from recovery.domain.call_logs import (
    FORMAT_LABELS,
    PROBLEM_LABELS,
    CallLogFormat,
    CallRecord,
    Direction,
    Malformed,
    NotACallLog,
    RowProblem,
    read_call_log,
)
from recovery.domain.hours import BusinessHours

__all__ = [
    "Assumptions",
    "AuditResult",
    "BadAssumption",
    "Estimate",
    "NotACallLog",
    "RowProblem",
    "audit_call_log",
    "estimate_for",
    "with_assumptions",
]

DAY_S = 86_400.0
# How many calls the reorder buffer holds, and how many it looks at to tell the order.
REORDER_CALLS = 10_000
ORDER_SAMPLE = 1_000
# How many malformed lines are listed by number (all are counted).
MALFORMED_LISTED = 100
DATE_CACHE = 64


class BadAssumption(ValueError):
    """An assumption outside what it can be (a share above 100%); names which."""


@dataclass(frozen=True)
class Assumptions:
    """What the estimate assumes; every one is shown beside the figure and can be changed.
    Defaults from the source documents: 30% of missed calls are new patients, 70% of new
    patients reached live book, 45% of those called back book, 250 operating days a year."""

    new_patient_share: float = 0.30
    live_booking_rate: float = 0.70
    callback_booking_rate: float = 0.45
    operating_days: int = 250
    visit_value_usd: int | None = None  # the practice's visit_value; unknown without one
    callback_window_days: int = 7

    def __post_init__(self) -> None:
        for name in ("new_patient_share", "live_booking_rate", "callback_booking_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise BadAssumption(f"{name} must be between 0 and 1 (0% and 100%), got {value}")
        if self.callback_booking_rate > self.live_booking_rate:
            raise BadAssumption(
                "callback_booking_rate is above live_booking_rate: a callback books no more "
                "patients than answering the call does"
            )
        if not 1 <= self.operating_days <= 366:
            raise BadAssumption(f"operating_days must be 1 to 366, got {self.operating_days}")
        if self.visit_value_usd is not None and not 0 <= self.visit_value_usd <= 1_000_000:
            raise BadAssumption(
                f"visit_value_usd must be 0 to 1,000,000, got {self.visit_value_usd}"
            )
        if not 1 <= self.callback_window_days <= 90:
            raise BadAssumption(
                f"callback_window_days must be 1 to 90, got {self.callback_window_days}"
            )

    @property
    def booking_gap(self) -> float:
        return self.live_booking_rate - self.callback_booking_rate

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Estimate:
    """annual = missed per operating day x new-patient share x booking gap x visit value
    x operating days; each term kept so the page can show the sum."""

    operating_days_in_log: int
    missed_per_operating_day: float
    new_patient_missed_per_day: float
    booking_gap: float
    annual_leak_usd: int | None


@dataclass
class AuditResult:
    format: CallLogFormat
    had_header: bool
    assumptions: Assumptions
    timezone: str | None
    rows: int = 0  # data rows read (not the header, not blank lines)
    calls: int = 0  # inbound calls
    answered: int = 0
    missed: int = 0
    outbound: int = 0  # calls the practice made: not counted, used as "reached"
    internal: int = 0  # extension to extension: skipped
    withheld_missed: int = 0  # missed calls with no caller number (nobody to call back)
    heat: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])
    calls_after_hours: int | None = None
    missed_after_hours: int | None = None
    callers_missed: int = 0  # distinct numbers with a missed call
    callers_never_reached: int = 0
    callers_window_open: int = 0  # missed near the end of the log: too soon to tell
    malformed: int = 0
    malformed_by_problem: dict[str, int] = field(default_factory=dict)
    malformed_lines: list[tuple[int, str]] = field(default_factory=list)
    first_call: datetime | None = None
    last_call: datetime | None = None
    days_with_calls: int = 0
    order: str = "oldest first"
    out_of_order: int = 0
    estimate: Estimate | None = None

    @property
    def missed_rate(self) -> float | None:
        return self.missed / self.calls if self.calls else None

    @property
    def after_hours_share(self) -> float | None:
        if self.calls_after_hours is None or not self.calls:
            return None
        return self.calls_after_hours / self.calls

    @property
    def after_hours_missed_share(self) -> float | None:
        if self.missed_after_hours is None or not self.missed:
            return None
        return self.missed_after_hours / self.missed

    @property
    def annual_leak_usd(self) -> int | None:
        return None if self.estimate is None else self.estimate.annual_leak_usd

    def as_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "format": self.format.value,
            "format_label": FORMAT_LABELS[self.format],
            "timezone": self.timezone,
            "rows": self.rows,
            "calls": self.calls,
            "answered": self.answered,
            "missed": self.missed,
            "missed_rate": self.missed_rate,
            "after_hours_share": self.after_hours_share,
            "after_hours_missed_share": self.after_hours_missed_share,
            "callers_missed": self.callers_missed,
            "callers_never_reached": self.callers_never_reached,
            "callers_window_open": self.callers_window_open,
            "withheld_missed": self.withheld_missed,
            "outbound_skipped": self.outbound,
            "internal_skipped": self.internal,
            "annual_leak_usd": self.annual_leak_usd,
            "estimate": None if est is None else _estimate_dict(est),
            "assumptions": self.assumptions.as_dict(),
            "missed_by_weekday_hour": self.heat,
            "first_call": None if self.first_call is None else self.first_call.isoformat(),
            "last_call": None if self.last_call is None else self.last_call.isoformat(),
            "days_with_calls": self.days_with_calls,
            "order": self.order,
            "out_of_order": self.out_of_order,
            "malformed": self.malformed,
            "malformed_by_problem": self.malformed_by_problem,
            "malformed_lines": [
                {"line": line, "problem": problem} for line, problem in self.malformed_lines
            ],
        }


# --- who was never reached ---------------------------------------------------------------


class _Forward:
    """Calls oldest first. Per caller one float: the deadline of its earliest unanswered
    missed call (> 0), 0 once answered within it, -1 once a deadline passed (final)."""

    def __init__(self, window_s: float) -> None:
        self.window = window_s
        self.state: dict[str, float] = {}
        self.never = 0

    def add(self, t: float, caller: str, missed: bool) -> None:
        s = self.state.get(caller)
        if s is not None and s > 0 and t > s:
            self.state[caller] = s = -1.0
            self.never += 1
        if s == -1.0:
            return
        if missed:
            if s is None or s == 0:
                self.state[caller] = t + self.window
        elif s is not None and s > 0:
            self.state[caller] = 0.0

    def finish(self, last_t: float) -> tuple[int, int, int]:
        never, still_open = self.never, 0
        for s in self.state.values():
            if s > 0:
                if s <= last_t:
                    never += 1
                else:
                    still_open += 1
        return len(self.state), never, still_open


class _Reverse:
    """Calls newest first: the earliest answered call seen so far is the first answer
    after any older missed call. Per caller: that time, and for callers who missed a call,
    the worst verdict so far (0 reached, 1 too soon to tell, 2 never reached)."""

    def __init__(self, window_s: float) -> None:
        self.window = window_s
        self.answered: dict[str, float] = {}
        self.verdict: dict[str, int] = {}
        self.last_t = 0.0

    def add(self, t: float, caller: str, missed: bool) -> None:
        if t > self.last_t:
            self.last_t = t
        if not missed:
            self.answered[caller] = t
            return
        answer = self.answered.get(caller)
        if answer is not None and t <= answer <= t + self.window:
            verdict = 0
        elif t + self.window > self.last_t:
            verdict = 1
        else:
            verdict = 2
        if verdict > self.verdict.get(caller, -1):
            self.verdict[caller] = verdict

    def finish(self, last_t: float) -> tuple[int, int, int]:
        verdicts = list(self.verdict.values())
        return len(verdicts), verdicts.count(2), verdicts.count(1)


class _Callers:
    """Orders the calls (a bounded heap) and hands them to the tracker for that order."""

    def __init__(self, window_s: float) -> None:
        self.window = window_s
        self.sample: list[tuple[float, str, bool]] | None = []
        self.heap: list[tuple[float, int, str, bool]] = []
        self.sign = 1.0
        self.seq = 0
        self.last_key = float("-inf")
        self.last_t = 0.0
        self.out_of_order = 0
        self.tracker: _Forward | _Reverse = _Forward(window_s)

    def add(self, t: float, caller: str, missed: bool) -> None:
        if t > self.last_t:
            self.last_t = t
        if self.sample is not None:
            self.sample.append((t, caller, missed))
            if len(self.sample) >= ORDER_SAMPLE:
                self._decide()
            return
        self._push(t, caller, missed)

    def _decide(self) -> None:
        sample, self.sample = self.sample or [], None
        rising = sum(1 for a, b in zip(sample, sample[1:], strict=False) if b[0] > a[0])
        falling = sum(1 for a, b in zip(sample, sample[1:], strict=False) if b[0] < a[0])
        if falling > rising:
            self.sign = -1.0
            self.tracker = _Reverse(self.window)
        for t, caller, missed in sample:
            self._push(t, caller, missed)

    def _push(self, t: float, caller: str, missed: bool) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (self.sign * t, self.seq, caller, missed))
        if len(self.heap) > REORDER_CALLS:
            self._pop()

    def _pop(self) -> None:
        key, _, caller, missed = heapq.heappop(self.heap)
        if key < self.last_key:
            self.out_of_order += 1
        else:
            self.last_key = key
        self.tracker.add(self.sign * key, caller, missed)

    def finish(self) -> tuple[int, int, int]:
        if self.sample is not None:
            self._decide()
        while self.heap:
            self._pop()
        return self.tracker.finish(self.last_t)

    @property
    def order(self) -> str:
        return "newest first" if self.sign < 0 else "oldest first"


# --- the audit ---------------------------------------------------------------------------


class _Clock:
    """Puts a call's start on the practice's clock (weekday, hour, date) and says whether
    the practice was open then, caching each date's opening hours."""

    def __init__(self, hours: BusinessHours | None, zone: ZoneInfo | None) -> None:
        self.hours = hours
        self.zone = hours.zone if hours else zone  # the practice's own clock comes first
        self.days: dict[date, list[tuple[float, float]]] = {}

    def place(self, at: datetime) -> tuple[datetime, float]:
        if at.tzinfo is None:
            local = at
            t = at.replace(tzinfo=self.zone or UTC).timestamp()
        else:
            local = at.astimezone(self.zone) if self.zone else at
            t = at.timestamp()
        return local, t

    def is_open(self, local: datetime, t: float) -> bool:
        assert self.hours is not None
        day = local.date()
        intervals = self.days.get(day)
        if intervals is None:
            if len(self.days) >= DATE_CACHE:
                self.days.clear()
            intervals = [(a.timestamp(), b.timestamp()) for a, b in self.hours.open_intervals(day)]
            self.days[day] = intervals
        return any(a <= t < b for a, b in intervals)

    def opens_on(self, day: date) -> bool:
        return self.hours is None or bool(self.hours.open_intervals(day))


def audit_call_log(
    lines: Iterable[str],
    *,
    assumptions: Assumptions | None = None,
    forced: CallLogFormat | None = None,
    hours: BusinessHours | None = None,
    zone: ZoneInfo | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> AuditResult:
    """Audit a call log given as text lines (a file opened in text mode will do).

    `hours` (the practice's) gives the zone and the after-hours figures; without it the
    times are read on the export's own clock and the after-hours figures are None.
    Raises NotACallLog when the file is not a call log we read."""
    assumptions = assumptions or Assumptions()
    log = read_call_log(lines, forced)
    clock = _Clock(hours, zone)
    result = AuditResult(
        format=log.layout.format,
        had_header=log.layout.has_header,
        assumptions=assumptions,
        timezone=str(clock.zone) if clock.zone else None,
    )
    if hours is not None:
        result.calls_after_hours = result.missed_after_hours = 0
    callers = _Callers(assumptions.callback_window_days * DAY_S)
    dates: set[int] = set()
    first_t = last_t = None
    heat = result.heat
    first_malformed: Malformed | None = None

    for row in log:
        result.rows += 1
        if progress is not None and result.rows % progress_every == 0:
            progress(result.rows)
        if isinstance(row, Malformed):
            result.malformed += 1
            key = row.problem.value
            result.malformed_by_problem[key] = result.malformed_by_problem.get(key, 0) + 1
            if len(result.malformed_lines) < MALFORMED_LISTED:
                result.malformed_lines.append((row.line, f"{PROBLEM_LABELS[row.problem]}"))
            first_malformed = first_malformed or row
            continue
        placed = _count(result, row, clock, callers, dates, heat)
        if placed is None:
            continue
        local, t = placed
        if first_t is None or t < first_t[0]:
            first_t = (t, local)
        if last_t is None or t > last_t[0]:
            last_t = (t, local)

    if result.calls == 0 and first_malformed is not None:
        raise NotACallLog(
            f"None of the {result.rows:,} rows could be read as a "
            f"{FORMAT_LABELS[result.format]}: line {first_malformed.line} has "
            f"{PROBLEM_LABELS[first_malformed.problem]} ({first_malformed.detail})."
        )
    result.callers_missed, result.callers_never_reached, result.callers_window_open = (
        callers.finish()
    )
    result.order, result.out_of_order = callers.order, callers.out_of_order
    result.first_call = None if first_t is None else first_t[1]
    result.last_call = None if last_t is None else last_t[1]
    result.days_with_calls = len(dates)
    result.estimate = estimate(result, dates, clock)
    return result


def _count(
    result: AuditResult,
    row: CallRecord,
    clock: _Clock,
    callers: _Callers,
    dates: set[int],
    heat: list[list[int]],
) -> tuple[datetime, float] | None:
    """Add one row to the figures; the call's local time and instant if it is a call."""
    local, t = clock.place(row.at)
    if row.direction is Direction.INTERNAL:
        result.internal += 1
        return None
    if row.direction is Direction.OUTBOUND:
        # A call the practice made is not a call it received; answered, it reached the
        # caller as surely as the caller's own call back would have.
        result.outbound += 1
        if row.caller and not row.missed:
            callers.add(t, row.caller, False)
        return None
    result.calls += 1
    dates.add(local.toordinal())
    after_hours = clock.hours is not None and not clock.is_open(local, t)
    if after_hours:
        result.calls_after_hours = (result.calls_after_hours or 0) + 1
    if row.missed:
        result.missed += 1
        heat[local.weekday()][local.hour] += 1
        if after_hours:
            result.missed_after_hours = (result.missed_after_hours or 0) + 1
        if not row.caller:
            result.withheld_missed += 1
    else:
        result.answered += 1
    if row.caller:
        callers.add(t, row.caller, row.missed)
    return local, t


def estimate(result: AuditResult, dates: set[int], clock: _Clock) -> Estimate:
    """Missed calls per operating day (the dates in the log with calls on which the
    practice opens; every date with calls when its hours are unknown), annualised."""
    operating = sum(1 for d in dates if clock.opens_on(date.fromordinal(d))) or len(dates)
    return estimate_for(result.missed, operating, result.assumptions)


def estimate_for(missed: int, operating_days_in_log: int, a: Assumptions) -> Estimate:
    """The estimate from the two figures of the log it needs: the page recomputes it this
    way when a manager edits an assumption (the file itself is long gone by then)."""
    per_day = missed / operating_days_in_log if operating_days_in_log else 0.0
    new_patients = per_day * a.new_patient_share
    annual = (
        None
        if a.visit_value_usd is None
        else round(new_patients * a.booking_gap * a.visit_value_usd * a.operating_days)
    )
    return Estimate(operating_days_in_log, per_day, new_patients, a.booking_gap, annual)


def with_assumptions(figures: dict[str, Any], a: Assumptions) -> dict[str, Any]:
    """An audit's figures (`AuditResult.as_dict()`) under other assumptions. The callback
    window decides who was never reached, which only the file can say: it stays."""
    window = figures["assumptions"]["callback_window_days"]
    if a.callback_window_days != window:
        a = replace(a, callback_window_days=window)
    est = estimate_for(figures["missed"], figures["estimate"]["operating_days_in_log"], a)
    return {
        **figures,
        "assumptions": a.as_dict(),
        "annual_leak_usd": est.annual_leak_usd,
        "estimate": _estimate_dict(est),
    }


def _estimate_dict(est: Estimate) -> dict[str, Any]:
    return {
        "operating_days_in_log": est.operating_days_in_log,
        "missed_per_operating_day": round(est.missed_per_operating_day, 3),
        "new_patient_missed_per_day": round(est.new_patient_missed_per_day, 3),
        "booking_gap": round(est.booking_gap, 4),
    }
