"""The leak audit's figures: counted by hand on the fixture logs, "never reached" against a
brute-force count on generated logs in either order, and the estimate's arithmetic."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recovery.domain.hours import BusinessHours
from recovery.services import leak_audit
from recovery.services.leak_audit import Assumptions, BadAssumption, NotACallLog, audit_call_log

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "call_logs"
WEEKDAYS = {day: "08:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")}
HOURS = BusinessHours.parse("America/Chicago", WEEKDAYS)
MON, TUE, FRI = 0, 1, 4


def audit(name: str, **kwargs: object) -> leak_audit.AuditResult:
    text = LOGS.joinpath(name).read_text()
    return audit_call_log(io.StringIO(text), hours=HOURS, **kwargs)  # type: ignore[arg-type]


def test_master_csv_figures_by_hand() -> None:
    r = audit("Master.csv", assumptions=Assumptions(visit_value_usd=200))
    # 8 lines: 5 inbound calls (4 missed, one of them "answered" by voicemail), a callback
    # the front desk made, an internal call, and a line without a time.
    assert (r.rows, r.calls, r.missed, r.answered) == (8, 5, 4, 1)
    assert r.missed_rate == pytest.approx(0.8)
    assert (r.outbound, r.internal, r.malformed) == (1, 1, 1)
    assert r.malformed_lines == [(7, "no start time, or not a date and time")]
    # Missed: Mon 08:01 (0199), Mon 12:04 (0166), Mon 18:30 (0155, voicemail), Fri Nov 20
    # 09:15 (0144).
    assert r.heat[MON][8] == 1 and r.heat[MON][12] == 1 and r.heat[MON][18] == 1
    assert r.heat[FRI][9] == 1
    assert sum(map(sum, r.heat)) == 4
    assert r.calls_after_hours == 1 and r.after_hours_share == pytest.approx(0.2)
    assert r.after_hours_missed_share == pytest.approx(0.25)
    # 0166 was called back (answered) 26 minutes later; 0199 and 0155 never heard from us
    # within 7 days; 0144 missed on the log's last day: too soon to tell.
    assert (r.callers_missed, r.callers_never_reached, r.callers_window_open) == (4, 2, 1)
    # 4 missed over 2 operating days = 2/day x 30% x (70% - 45%) x $200 x 250 days.
    assert r.estimate is not None
    assert r.estimate.operating_days_in_log == 2
    assert r.annual_leak_usd == 7500


def test_twilio_export_newest_first() -> None:
    r = audit("twilio-call-log.csv", assumptions=Assumptions(visit_value_usd=100))
    assert r.order == "newest first"
    assert (r.calls, r.missed, r.answered, r.outbound, r.malformed) == (3, 2, 1, 1, 1)
    # 0199 missed Tue 09:00 CST, called back in and answered Wed 10:00: reached. 0188
    # (Mon 20:00, after hours) missed within 7 days of the log's end: too soon to tell.
    assert (r.callers_missed, r.callers_never_reached, r.callers_window_open) == (2, 0, 1)
    assert r.heat[TUE][9] == 1 and r.heat[MON][20] == 1
    assert r.calls_after_hours == 1
    assert r.timezone == "America/Chicago"


def test_simple_csv_and_withheld_numbers() -> None:
    r = audit("simple.csv")
    assert (r.calls, r.missed, r.withheld_missed, r.malformed) == (5, 3, 1, 1)
    assert r.callers_missed == 2  # the anonymous caller is nobody to call back
    assert r.annual_leak_usd is None  # no visit value: the estimate says so, not $0


def test_without_hours_the_after_hours_figures_are_unknown() -> None:
    r = audit_call_log(io.StringIO(LOGS.joinpath("Master.csv").read_text()))
    assert r.calls_after_hours is None and r.after_hours_share is None
    assert r.timezone is None and r.calls == 5


def test_estimate_uses_every_assumption() -> None:
    base = audit("Master.csv", assumptions=Assumptions(visit_value_usd=200)).annual_leak_usd
    assert base == 7500
    changed = Assumptions(
        new_patient_share=0.5,
        live_booking_rate=0.8,
        callback_booking_rate=0.4,
        operating_days=200,
        visit_value_usd=300,
    )
    # 2 missed/day x 50% x 40% x $300 x 200 days
    assert audit("Master.csv", assumptions=changed).annual_leak_usd == 24000


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"new_patient_share": 1.2}, "new_patient_share"),
        ({"live_booking_rate": -0.1}, "live_booking_rate"),
        ({"callback_booking_rate": 0.8}, "callback_booking_rate"),
        ({"operating_days": 0}, "operating_days"),
        ({"visit_value_usd": -5}, "visit_value_usd"),
        ({"callback_window_days": 0}, "callback_window_days"),
    ],
)
def test_impossible_assumptions_are_refused_by_name(kwargs: dict[str, float], names: str) -> None:
    with pytest.raises(BadAssumption, match=names):
        Assumptions(**kwargs)  # type: ignore[arg-type]


def test_a_log_of_only_bad_rows_is_not_a_call_log() -> None:
    text = "time,from,to,status,duration\nyesterday,5125550199,5125550100,busy,0\n"
    with pytest.raises(NotACallLog, match="line 2"):
        audit_call_log(io.StringIO(text))


def test_callback_window_is_editable() -> None:
    text = (
        "time,from,to,status,duration\n"
        "2026-11-02 09:00:00,5125550199,5125550100,no-answer,0\n"
        "2026-11-05 09:00:00,5125550199,5125550100,answered,60\n"
        "2026-11-30 09:00:00,5125550188,5125550100,answered,60\n"
    )
    week = audit_call_log(io.StringIO(text))
    two_days = audit_call_log(io.StringIO(text), assumptions=Assumptions(callback_window_days=2))
    assert week.callers_never_reached == 0
    assert two_days.callers_never_reached == 1


def test_state_kept_is_per_caller_who_missed_a_call() -> None:
    """Oldest first, only callers with a missed call are remembered; answered-only callers
    (most of a practice's callers) cost nothing."""
    lines = ["time,from,to,status,duration\n"]
    start = datetime(2026, 1, 5, 8)
    for n in range(5000):
        at = (start + timedelta(minutes=n)).isoformat(sep=" ")
        status = "no-answer" if n % 10 == 0 else "answered"
        lines.append(f"{at},{5125500000 + n},5125550100,{status},0\n")
    tracker: dict[str, object] = {}
    original = leak_audit._Callers.finish

    def spy(self: leak_audit._Callers) -> tuple[int, int, int]:
        got = original(self)
        tracker["state"] = self.tracker
        return got

    leak_audit._Callers.finish = spy  # type: ignore[method-assign]
    try:
        r = audit_call_log(iter(lines))
    finally:
        leak_audit._Callers.finish = original  # type: ignore[method-assign]
    forward = tracker["state"]
    assert isinstance(forward, leak_audit._Forward)
    assert len(forward.state) == 500 == r.callers_missed


# --- never reached, against brute force --------------------------------------------------

DAY = timedelta(days=1)
WINDOW_DAYS = 7


def brute_force(calls: list[tuple[datetime, str, bool]]) -> tuple[int, int, int]:
    """Per caller: never reached if a missed call had no answered call from them within
    the window and the window closed before the log's last call; too soon if it had not."""
    last = max(t for t, _, _ in calls)
    verdict: dict[str, int] = {}
    for t, caller, missed in calls:
        if not missed:
            continue
        answered = any(
            c == caller and not m and t <= u <= t + WINDOW_DAYS * DAY for u, c, m in calls
        )
        v = 0 if answered else (1 if t + WINDOW_DAYS * DAY > last else 2)
        verdict[caller] = max(verdict.get(caller, -1), v)
    values = list(verdict.values())
    return len(values), values.count(2), values.count(1)


log_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60 * 24 * 60),  # minutes into 60 days
        st.sampled_from(["5125550101", "5125550102", "5125550103", "5125550104"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
    unique_by=lambda c: c[0],  # one call a minute: order is then well defined
)


def _csv(calls: list[tuple[datetime, str, bool]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["time", "from", "to", "status", "duration"])
    for t, caller, missed in calls:
        writer.writerow(
            [t.isoformat(sep=" "), caller, "5125550100", "busy" if missed else "answered", 0]
        )
    return buffer.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=log_strategy, newest_first=st.booleans(), shuffle_seed=st.integers(0, 2**16))
def test_never_reached_matches_brute_force(
    log: list[tuple[int, str, bool]], newest_first: bool, shuffle_seed: int
) -> None:
    start = datetime(2026, 1, 1)
    calls = sorted((start + timedelta(minutes=m), c, missed) for m, c, missed in log)
    expected = brute_force(calls)
    ordered = list(reversed(calls)) if newest_first else list(calls)
    # A little disorder, as Asterisk's rows (written when each call ends) have: the
    # reorder buffer mends it.
    rng = random.Random(shuffle_seed)
    for _ in range(len(ordered) // 5):
        i = rng.randrange(len(ordered))
        j = min(len(ordered) - 1, i + rng.randrange(1, 4))
        ordered[i], ordered[j] = ordered[j], ordered[i]
    r = audit_call_log(io.StringIO(_csv(ordered)))
    assert (r.callers_missed, r.callers_never_reached, r.callers_window_open) == expected
    assert r.out_of_order == 0
