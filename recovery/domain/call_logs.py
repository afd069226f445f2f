"""Call-log exports read one row at a time: Asterisk/FreePBX CDR CSV, Twilio's call-log
CSV, and a simple ``time,from,to,status,duration`` CSV.

A manager uploads whatever their phone system exports, before installing anything, so the
reader must take real files as they come: Asterisk's ``Master.csv`` has no header row
(``cdr_csv`` writes the columns in a fixed order), CDR exports from FreePBX's reports or an
ODBC backend do (``calldate`` instead of ``start``, extra columns, any order), Twilio's
Console names its columns in title case ("Date Created", "Parent Call Sid") and the API
in snake case. Unknown columns are ignored; a row that cannot be read is a `Malformed`
with its line number, never an exception, because one bad line in a year of calls must
not hide the other million.

Everything here is pure and streaming: `read_call_log` takes an iterable of text lines and
yields `CallRecord`s and `Malformed`s in file order, holding nothing but the current row
(and, for Twilio, the few rows of calls still being joined to their legs). No caller
number is ever put into a `Malformed`: its detail names columns, not values, so a report of
bad lines carries no PHI.
"""

from __future__ import annotations

import csv
import enum
import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "CallLog",
    "CallLogFormat",
    "CallRecord",
    "Direction",
    "Malformed",
    "NotACallLog",
    "RowProblem",
    "detect_format",
    "read_call_log",
]


class CallLogFormat(enum.StrEnum):
    ASTERISK = "asterisk"  # Asterisk / FreePBX CDR CSV (Master.csv), with or without header
    TWILIO = "twilio"  # Twilio's call-log CSV export (Console or API field names)
    SIMPLE = "simple"  # time,from,to,status,duration


FORMAT_LABELS = {
    CallLogFormat.ASTERISK: "Asterisk/FreePBX CDR CSV (Master.csv)",
    CallLogFormat.TWILIO: "Twilio call-log CSV export",
    CallLogFormat.SIMPLE: "CSV with the columns time,from,to,status,duration",
}

EXPECTED = (
    "an Asterisk/FreePBX CDR CSV (Master.csv, with or without its header row), "
    "a Twilio call-log CSV export, or a CSV with the header time,from,to,status,duration"
)


class Direction(enum.StrEnum):
    INBOUND = "inbound"  # a caller rang the practice: the calls the audit counts
    OUTBOUND = "outbound"  # the practice rang out: only a sign that a caller was reached
    INTERNAL = "internal"  # extension to extension: not a patient's call, skipped


class RowProblem(enum.StrEnum):
    UNREADABLE = "unreadable"  # the CSV itself is broken on this line (a stray quote)
    COLUMNS = "columns"  # too few columns for the format
    TIME = "time"  # the call's start time is missing or not a time
    STATUS = "status"  # the status/disposition is not one the format defines
    DIRECTION = "direction"  # Twilio: a direction Twilio does not define


PROBLEM_LABELS = {
    RowProblem.UNREADABLE: "not readable as CSV",
    RowProblem.COLUMNS: "too few columns",
    RowProblem.TIME: "no start time, or not a date and time",
    RowProblem.STATUS: "a status that is not a call outcome",
    RowProblem.DIRECTION: "a direction that is not inbound or outbound",
}


class NotACallLog(ValueError):
    """The file is not a call log we read; the message names what was expected."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    line: int  # the file's line number where the row starts (1 is the first line)
    at: datetime  # the call's start: aware if the file said its offset, else wall clock
    caller: str  # the outside party's digits ("" when withheld): the caller of an inbound call
    direction: Direction
    missed: bool  # nobody at the practice spoke to the caller (rang out, busy, voicemail)


@dataclass(frozen=True, slots=True)
class Malformed:
    line: int
    problem: RowProblem
    detail: str  # which column, never its value (a value may be a patient's number)


Row = CallRecord | Malformed

# --- outcomes ----------------------------------------------------------------------------

ASTERISK_MISSED = frozenset({"NO ANSWER", "NOANSWER", "BUSY", "FAILED", "CONGESTION", "CANCEL"})
ASTERISK_ANSWERED = frozenset({"ANSWERED", "ANSWER"})
# A call "answered" by the voicemail application reached a machine, not a person.
ASTERISK_MACHINE_APPS = frozenset({"voicemail", "vm", "voicemailmain"})

SIMPLE_MISSED = frozenset(
    {"no-answer", "busy", "failed", "canceled", "cancelled", "missed", "voicemail"}
)
SIMPLE_ANSWERED = frozenset({"answered", "completed", "connected"})

TWILIO_MISSED = frozenset({"no-answer", "busy", "failed", "canceled"})
TWILIO_ANSWERED = frozenset({"completed"})
# Calls still under way when the log was exported have no outcome yet: not a bad row.
TWILIO_UNFINISHED = frozenset({"queued", "initiated", "ringing", "in-progress"})

# Asterisk's cdr_csv column order (Master.csv has no header); later versions append
# peeraccount, linkedid and sequence, which we do not need.
MASTER_CSV_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
_MASTER = {name: i for i, name in enumerate(MASTER_CSV_COLUMNS)}
_MASTER_MIN_COLUMNS = _MASTER["disposition"] + 1

_NON_DIGIT = re.compile(r"\D+")
_NORMALISE_HEADER = re.compile(r"[^a-z0-9]+")
# A number at least this long is outside the practice; shorter ones are extensions.
_MIN_EXTERNAL_DIGITS = 7


def caller_key(raw: str) -> str:
    """The digits that identify a caller across rows: +1 (512) 555-0199, 15125550199 and
    5125550199 are one caller. Cheap on purpose: a million rows go through it."""
    digits = _NON_DIGIT.sub("", raw)
    if len(digits) == 11 and digits[0] == "1":
        return digits[1:]
    if len(digits) < _MIN_EXTERNAL_DIGITS or not digits.strip("0"):
        return ""  # withheld, anonymous, an extension or all zeros: no one to call back
    return digits


def _is_external(raw: str) -> bool:
    return len(_NON_DIGIT.sub("", raw)) >= _MIN_EXTERNAL_DIGITS


# --- times -------------------------------------------------------------------------------

_US_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p")


def parse_time(raw: str) -> datetime | None:
    """ISO 8601 (with or without an offset or a 'Z'), '... UTC', RFC 2822 (Twilio's API
    dates) and US month/day/year; None for anything else."""
    text = raw.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)  # the fast path: Asterisk and most exports
    except ValueError:
        pass
    upper = text.upper()
    for suffix in (" UTC", " GMT"):
        if upper.endswith(suffix):
            try:
                return datetime.fromisoformat(text[: -len(suffix)] + "+00:00")
            except ValueError:
                break
    if "," in text or text[:3].isalpha():
        try:
            return parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    for fmt in _US_FORMATS:
        try:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 - wall clock of the export
        except ValueError:
            continue
    return None


# --- detection ---------------------------------------------------------------------------


def _header_names(row: Sequence[str]) -> list[str]:
    return [_NORMALISE_HEADER.sub("_", cell.strip().lower()).strip("_") for cell in row]


def _looks_like_master_row(row: Sequence[str]) -> bool:
    return (
        len(row) >= _MASTER_MIN_COLUMNS
        and parse_time(row[_MASTER["start"]]) is not None
        and row[_MASTER["disposition"]].strip().upper() in ASTERISK_MISSED | ASTERISK_ANSWERED
    )


def _looks_like_simple_row(row: Sequence[str]) -> bool:
    return (
        len(row) >= 4
        and parse_time(row[0]) is not None
        and row[3].strip().lower() in SIMPLE_MISSED | SIMPLE_ANSWERED
    )


@dataclass(frozen=True)
class Layout:
    """How to read a file's rows: its format, whether line 1 is a header, and where each
    column we need is."""

    format: CallLogFormat
    has_header: bool
    columns: dict[str, int]


_ASTERISK_ALIASES = {
    "start": ("start", "calldate", "call_date", "start_time", "date"),
    "src": ("src", "source"),
    "dst": ("dst", "destination"),
    "dcontext": ("dcontext", "destination_context"),
    "lastapp": ("lastapp", "last_app", "last_application"),
    "disposition": ("disposition",),
    "uniqueid": ("uniqueid", "unique_id"),
}
_TWILIO_ALIASES = {
    "start": ("start_time", "date_created", "date", "start"),
    "from": ("from", "from_formatted", "caller"),
    "direction": ("direction",),
    "status": ("status",),
    "created": ("date_created",),
    "to": ("to", "to_formatted"),
    "sid": ("call_sid", "sid"),
    "parent": ("parent_call_sid", "parent_sid"),
}
_SIMPLE_ALIASES = {
    "time": ("time", "start", "start_time", "date"),
    "from": ("from", "caller"),
    "to": ("to",),
    "status": ("status",),
}


def _find(names: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for key, options in aliases.items():
        for option in options:
            if option in names:
                found[key] = names.index(option)
                break
    return found


def detect_format(first_row: Sequence[str], forced: CallLogFormat | None = None) -> Layout:
    """Read the first row as a header (or as data, for a headerless Master.csv or simple
    CSV) and say how to read the rest. Raises NotACallLog naming what was expected."""
    names = _header_names(first_row)
    name_set = set(names)

    def asterisk_header() -> Layout | None:
        cols = _find(names, _ASTERISK_ALIASES)
        if {"start", "src", "disposition"} <= cols.keys():
            return Layout(CallLogFormat.ASTERISK, True, cols)
        return None

    def twilio_header() -> Layout | None:
        cols = _find(names, _TWILIO_ALIASES)
        if {"start", "from", "direction", "status"} <= cols.keys():
            return Layout(CallLogFormat.TWILIO, True, cols)
        return None

    def simple_header() -> Layout | None:
        cols = _find(names, _SIMPLE_ALIASES)
        if {"time", "from", "status"} <= cols.keys():
            return Layout(CallLogFormat.SIMPLE, True, cols)
        return None

    master = Layout(CallLogFormat.ASTERISK, False, dict(_MASTER))
    simple = Layout(CallLogFormat.SIMPLE, False, {"time": 0, "from": 1, "to": 2, "status": 3})

    if forced is CallLogFormat.ASTERISK:
        found = asterisk_header()
        if found:
            return found
        if "disposition" in name_set:
            raise NotACallLog(
                "The header names a disposition column but not src and a start time "
                f"(start or calldate): expected {FORMAT_LABELS[forced]}."
            )
        return master  # Master.csv: no header; a bad first row is reported as line 1
    if forced is CallLogFormat.TWILIO:
        found = twilio_header()
        if found:
            return found
        raise NotACallLog(
            "The first line is not a Twilio call-log header: expected columns for the start "
            "time (Start Time or Date Created), From, Direction and Status."
        )
    if forced is CallLogFormat.SIMPLE:
        return simple_header() or simple

    for found in (twilio_header(), asterisk_header(), simple_header()):
        if found:
            return found
    if _looks_like_master_row(first_row):
        return master
    if _looks_like_simple_row(first_row):
        return simple
    raise NotACallLog(f"This file is not a call log we can read: expected {EXPECTED}.")


# --- reading -----------------------------------------------------------------------------


def _cell(row: Sequence[str], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    return row[index]


def _asterisk(row: Sequence[str], line: int, cols: dict[str, int]) -> Row:
    need = max(cols["start"], cols["src"], cols["disposition"]) + 1
    if len(row) < need:
        return Malformed(line, RowProblem.COLUMNS, f"{len(row)} columns, expected {need} or more")
    at = parse_time(row[cols["start"]])
    if at is None:
        return Malformed(line, RowProblem.TIME, "start")
    disposition = row[cols["disposition"]].strip().upper()
    if disposition in ASTERISK_MISSED:
        missed = True
    elif disposition in ASTERISK_ANSWERED:
        app = _cell(row, cols.get("lastapp")).strip().lower()
        missed = app in ASTERISK_MACHINE_APPS
    else:
        return Malformed(line, RowProblem.STATUS, "disposition")
    src, dst = row[cols["src"]], _cell(row, cols.get("dst"))
    context = _cell(row, cols.get("dcontext")).strip().lower()
    # FreePBX dials out from the from-internal context; an outside number there is a call
    # the practice made, so its caller is the destination.
    if context.startswith("from-internal") or not _is_external(src):
        if _is_external(dst):
            return CallRecord(line, at, caller_key(dst), Direction.OUTBOUND, missed)
        if not _is_external(src) and src.strip():
            return CallRecord(line, at, "", Direction.INTERNAL, missed)
    return CallRecord(line, at, caller_key(src), Direction.INBOUND, missed)


# The legs of one call (a ring group ringing three desks) are written together when the
# call ends, so they sit within a few rows; a call not joined by another leg within this
# many rows is complete. This bounds what the Asterisk join holds.
ASTERISK_JOIN_ROWS = 2000


def _asterisk_calls(
    items: Iterable[tuple[int, Sequence[str]] | Malformed], cols: dict[str, int]
) -> Iterator[Row]:
    """Asterisk writes one CDR per leg it dialled: an inbound call to a ring group or a
    queue is several rows with the caller's channel's uniqueid, one ANSWERED and the others
    NO ANSWER. They are one call, answered if any leg was (and at its first leg's line and
    start). Rows come out in file order, each once its call can have no more legs."""
    pending: deque[list[Any]] = deque()  # [row, uniqueid or "", last row count seen]
    open_calls: dict[str, list[Any]] = {}
    for count, item in enumerate(items, start=1):
        if isinstance(item, Malformed):
            pending.append([item, "", 0])
        else:
            line, row = item
            record = _asterisk(row, line, cols)
            uid = _cell(row, cols.get("uniqueid")).strip()
            joinable = isinstance(record, CallRecord) and record.direction is Direction.INBOUND
            held = open_calls.get(uid) if joinable and uid else None
            if held is not None:
                first: CallRecord = held[0]
                assert isinstance(record, CallRecord)
                held[0] = CallRecord(
                    first.line,
                    min(first.at, record.at, key=_sortable),
                    first.caller or record.caller,
                    Direction.INBOUND,
                    first.missed and record.missed,
                )
                held[2] = count
            elif joinable and uid:
                entry = [record, uid, count]
                open_calls[uid] = entry
                pending.append(entry)
            else:
                pending.append([record, "", 0])
        while pending and (not pending[0][1] or pending[0][2] <= count - ASTERISK_JOIN_ROWS):
            done, uid, _ = pending.popleft()
            if uid:
                del open_calls[uid]
            yield done
    for done, _, _ in pending:
        yield done


def _sortable(at: datetime) -> float:
    return at.replace(tzinfo=UTC).timestamp() if at.tzinfo is None else at.timestamp()


def _simple(row: Sequence[str], line: int, cols: dict[str, int]) -> Row:
    need = max(cols["time"], cols["from"], cols["status"]) + 1
    if len(row) < need:
        return Malformed(line, RowProblem.COLUMNS, f"{len(row)} columns, expected {need} or more")
    at = parse_time(row[cols["time"]])
    if at is None:
        return Malformed(line, RowProblem.TIME, "time")
    status = row[cols["status"]].strip().lower()
    if status in SIMPLE_MISSED:
        missed = True
    elif status in SIMPLE_ANSWERED:
        missed = False
    else:
        return Malformed(line, RowProblem.STATUS, "status")
    return CallRecord(line, at, caller_key(row[cols["from"]]), Direction.INBOUND, missed)


@dataclass(slots=True)
class _TwilioCall:
    """An inbound call and the legs it dialled (the clinic's phones), joined by call sid."""

    first_line: int
    last_seen: int  # row count when a row of this call was last read
    at: datetime | None = None
    caller: str = ""
    own_missed: bool | None = None  # the inbound leg's own status
    legs: int = 0
    leg_answered: bool = False
    leg_line: int = 0
    leg_at: datetime | None = None
    leg_caller: str = ""


# A call's rows (the inbound leg and the legs it dialled) are created within seconds of
# each other, so in a time-sorted export they sit within a few rows; a call not touched for
# this many rows is complete. This bounds what the Twilio join holds.
TWILIO_JOIN_ROWS = 2000


def _take(calls: OrderedDict[str, _TwilioCall], sid: str, line: int, count: int) -> _TwilioCall:
    """The call being joined under `sid`, taken out to go back in last (newest)."""
    found: _TwilioCall | None = calls.pop(sid, None)
    return found if found is not None else _TwilioCall(line, count)


def _twilio_direction(raw: str) -> Direction | None:
    value = raw.strip().lower()
    if value == "inbound":
        return Direction.INBOUND
    if value.startswith("outbound") or value.startswith("trunking"):
        return Direction.OUTBOUND
    return None


def _twilio_rows(rows: Iterable[tuple[int, Sequence[str]]], cols: dict[str, int]) -> Iterator[Row]:
    """Twilio answers an inbound call to run its TwiML, so the inbound leg says
    `completed` whether or not anyone picked up; what happened at the clinic is on the
    `outbound-dial` legs it <Dial>ed (Parent Call Sid = the inbound call). A call is
    answered if any leg was, missed if it dialled legs and none answered."""
    open_calls: OrderedDict[str, _TwilioCall] = OrderedDict()
    need = max(cols["start"], cols["from"], cols["direction"], cols["status"]) + 1
    count = 0

    def finish(call: _TwilioCall) -> Row | None:
        if call.at is None:  # only its dialled legs are in the file: the leg stands in
            if call.leg_at is None:
                return None
            missed = not call.leg_answered
            return CallRecord(
                call.leg_line, call.leg_at, call.leg_caller, Direction.INBOUND, missed
            )
        missed = not call.leg_answered if call.legs else bool(call.own_missed)
        return CallRecord(call.first_line, call.at, call.caller, Direction.INBOUND, missed)

    def flush(older_than: int) -> Iterator[Row]:
        while open_calls:
            sid, call = next(iter(open_calls.items()))
            if call.last_seen > older_than:
                break
            del open_calls[sid]
            done = finish(call)
            if done is not None:
                yield done

    for line, row in rows:
        count += 1
        if len(row) < need:
            yield Malformed(line, RowProblem.COLUMNS, f"{len(row)} columns, expected {need}")
            continue
        at = parse_time(row[cols["start"]]) or parse_time(_cell(row, cols.get("created")))
        if at is None:
            yield Malformed(line, RowProblem.TIME, "start time")
            continue
        direction = _twilio_direction(row[cols["direction"]])
        if direction is None:
            yield Malformed(line, RowProblem.DIRECTION, "direction")
            continue
        status = row[cols["status"]].strip().lower()
        if status in TWILIO_UNFINISHED:
            continue
        if status not in TWILIO_MISSED and status not in TWILIO_ANSWERED:
            yield Malformed(line, RowProblem.STATUS, "status")
            continue
        missed = status in TWILIO_MISSED
        sid = _cell(row, cols.get("sid")).strip()
        parent = _cell(row, cols.get("parent")).strip()
        raw_dir = row[cols["direction"]].strip().lower()
        if raw_dir == "outbound-dial" and parent:
            call = _take(open_calls, parent, line, count)
            call.last_seen = count
            call.legs += 1
            call.leg_answered = call.leg_answered or not missed
            call.leg_line, call.leg_at = line, at
            call.leg_caller = caller_key(row[cols["from"]])
            open_calls[parent] = call
        elif direction is Direction.INBOUND and sid:
            call = _take(open_calls, sid, line, count)
            call.last_seen = count
            call.first_line = line
            call.at, call.caller, call.own_missed = at, caller_key(row[cols["from"]]), missed
            open_calls[sid] = call
        elif direction is Direction.INBOUND:
            yield CallRecord(line, at, caller_key(row[cols["from"]]), direction, missed)
        else:
            to = _cell(row, cols.get("to"))
            yield CallRecord(line, at, caller_key(to), Direction.OUTBOUND, missed)
        yield from flush(count - TWILIO_JOIN_ROWS)
    yield from flush(count)


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, list[str] | None]]:
    """CSV rows with the line each starts on; None for a row the csv module refuses
    (after which it reads on from the next line)."""
    reader = csv.reader(lines)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield line, None
            line = reader.line_num + 1
            continue
        yield line, row
        line = reader.line_num + 1


def read_call_log(lines: Iterable[str], forced: CallLogFormat | None = None) -> CallLog:
    """Every row of the log as a CallRecord or a Malformed, in file order. The first
    thing it does is raise NotACallLog if line 1 is neither a header nor a row we know."""
    numbered = _numbered(lines)
    first: tuple[int, list[str]] | None = None
    for line, row in numbered:
        if row is None:
            raise NotACallLog(f"Line {line} is not readable as CSV: expected {EXPECTED}.")
        if any(cell.strip() for cell in row):
            first = (line, row)
            break
    if first is None:
        raise NotACallLog(f"The file is empty: expected {EXPECTED}.")
    layout = detect_format(first[1], forced)
    return _rows(layout, first, numbered)


class CallLog(Iterator[Row]):
    """The rows, and the layout they were read with (the audit reports the format)."""

    def __init__(self, layout: Layout, rows: Iterator[Row]) -> None:
        self.layout = layout
        self._rows = rows

    def __next__(self) -> Row:
        return next(self._rows)


def _rows(
    layout: Layout,
    first: tuple[int, list[str]],
    numbered: Iterator[tuple[int, list[str] | None]],
) -> CallLog:
    def data() -> Iterator[tuple[int, Sequence[str]] | Malformed]:
        if not layout.has_header:
            yield first
        for line, row in numbered:
            if row is None:
                yield Malformed(line, RowProblem.UNREADABLE, "CSV quoting")
            elif any(cell.strip() for cell in row):
                yield line, row

    def parsed() -> Iterator[Row]:
        if layout.format is CallLogFormat.TWILIO:
            malformed: list[Malformed] = []

            def good() -> Iterator[tuple[int, Sequence[str]]]:
                for item in data():
                    if isinstance(item, Malformed):
                        malformed.append(item)
                    else:
                        yield item

            for row in _twilio_rows(good(), layout.columns):
                if malformed:
                    yield from malformed
                    malformed.clear()
                yield row
            yield from malformed
            return
        cols = layout.columns
        if layout.format is CallLogFormat.ASTERISK:
            yield from _asterisk_calls(data(), cols)
            return
        for item in data():
            yield item if isinstance(item, Malformed) else _simple(item[1], item[0], cols)

    return CallLog(layout, parsed())
