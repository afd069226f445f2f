"""The report's pictures, drawn on the server as SVG: no CDN, no script, no library.

Clinic networks and offline installs block outside scripts, and our pages allow none
(Content-Security-Policy: no script-src, no inline style), so each chart is plain SVG
markup with presentation attributes and CSS classes from reports.css. Every chart says
what it shows in its <title>/<desc> (read by screen readers in place of the picture);
the template puts the same numbers in a table beside it.

Each function takes the report's numbers and a `link` for the episodes behind a mark,
and returns Markup: the values are numbers, dates and our own labels, escaped anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from recovery.services.reports import TTFT_EDGES_MS, DayPoint

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Heat-map shades, lightest first; the lightest is "none": a zero is not a colour.
HEAT_STEPS = 5


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _attrs(**attrs: object) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{escape(str(value))}"')
    return " ".join(parts)


def _el(tag: str, body: str = "", **attrs: object) -> str:
    return f"<{tag} {_attrs(**attrs)}>{body}</{tag}>"


def _svg(chart_id: str, width: int, height: int, title: str, desc: str, body: str) -> Markup:
    head = _el("title", escape(title), id=f"{chart_id}-title") + _el(
        "desc", escape(desc), id=f"{chart_id}-desc"
    )
    return Markup(  # noqa: S704 - built from escaped parts above
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'xmlns="http://www.w3.org/2000/svg">{head}{body}</svg>'
    )


def _nice_max(value: float) -> int:
    """The top of a count axis: 1, 2, 5, 10, 20, 50, ... at or above `value`."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return int(10 * magnitude)


def _day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


# --- missed calls and recovery rate per day ------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    top: int
    height: int


def daily_lines(days: Sequence[DayPoint], link: Callable[[date], str]) -> Markup:
    """Two panels over the same days: missed calls (a count) above, the recovery rate
    (0-100%) below. Two axes on one panel read as one line crossing the other."""
    width, left, right = 720, 48, 16
    calls, rate = _Panel(28, 100), _Panel(180, 100)
    height = rate.top + rate.height + 30
    plot_w = width - left - right
    n = max(1, len(days))
    step = plot_w / n
    xs = [left + step * (i + 0.5) for i in range(len(days))]
    top_count = _nice_max(max((d.missed for d in days), default=0))
    out: list[str] = []

    for panel, label, ticks in (
        (calls, "Missed calls", [(0, "0"), (top_count, str(top_count))]),
        (rate, "Recovery rate", [(0, "0%"), (1, "100%")]),
    ):
        out.append(_el("text", escape(label), x=left, y=panel.top - 10, class_="chart-label"))
        for value, text in ticks:
            full = top_count if panel is calls else 1
            y = panel.top + panel.height - panel.height * value / full
            out.append(_el("line", x1=left, x2=width - right, y1=y, y2=y, class_="chart-grid"))
            out.append(
                _el("text", text, x=left - 6, y=y + 4, class_="chart-tick", text_anchor="end")
            )

    def y_calls(d: DayPoint) -> float:
        return calls.top + calls.height - calls.height * d.missed / top_count

    def y_rate(value: float) -> float:
        return rate.top + rate.height - rate.height * value

    if days:
        out.append(
            _el(
                "polyline",
                points=" ".join(f"{x:.1f},{y_calls(d):.1f}" for x, d in zip(xs, days, strict=True)),
                class_="chart-line chart-line-calls",
            )
        )
        # The rate has no value on a day without missed calls: the line breaks there
        # rather than dropping to 0% (nothing was lost that day).
        segment: list[str] = []
        for x, d in zip(xs, days, strict=True):
            if d.rate is None:
                if len(segment) > 1:
                    out.append(
                        _el(
                            "polyline",
                            points=" ".join(segment),
                            class_="chart-line chart-line-rate",
                        )
                    )
                segment = []
                continue
            segment.append(f"{x:.1f},{y_rate(d.rate):.1f}")
        if len(segment) > 1:
            out.append(
                _el("polyline", points=" ".join(segment), class_="chart-line chart-line-rate")
            )

    dots = len(days) <= 62  # a quarter's dots would only blur the line
    for x, d in zip(xs, days, strict=True):
        tip = f"{_day_label(d.day)}: {d.missed} missed, {d.recovered} recovered ({percent(d.rate)})"
        marks = ""
        if dots:
            marks += _el(
                "circle",
                cx=f"{x:.1f}",
                cy=f"{y_calls(d):.1f}",
                r=3.5,
                class_="chart-dot chart-dot-calls",
            )
            if d.rate is not None:
                marks += _el(
                    "circle",
                    cx=f"{x:.1f}",
                    cy=f"{y_rate(d.rate):.1f}",
                    r=3.5,
                    class_="chart-dot chart-dot-rate",
                )
        # The whole column is the link: easier to hit than a dot, on a phone too.
        hit = _el(
            "rect",
            x=f"{x - step / 2:.1f}",
            y=calls.top,
            width=f"{step:.1f}",
            height=rate.top + rate.height - calls.top,
            class_="chart-hit",
        )
        out.append(_el("a", _el("title", escape(tip)) + hit + marks, href=link(d.day)))

    for i in _label_positions(len(days)):
        out.append(
            _el(
                "text",
                escape(_day_label(days[i].day)),
                x=f"{xs[i]:.1f}",
                y=height - 8,
                class_="chart-tick",
                text_anchor="middle",
            )
        )
    desc = "; ".join(
        f"{_day_label(d.day)}: {d.missed} missed, {percent(d.rate)} recovered" for d in days
    )
    return _svg(
        "chart-days", width, height, "Missed calls and recovery rate per day", desc, "".join(out)
    )


def _label_positions(count: int, most: int = 7) -> list[int]:
    if count <= 0:
        return []
    if count <= most:
        return list(range(count))
    stride = math.ceil((count - 1) / (most - 1))
    picked = list(range(0, count, stride))
    if count - 1 - picked[-1] < stride / 2:
        picked[-1] = count - 1
    else:
        picked.append(count - 1)
    return picked


# --- outcomes ------------------------------------------------------------------------------


def outcome_bars(outcomes: Sequence[tuple[str, str, int]], link: Callable[[str], str]) -> Markup:
    """Horizontal bars, one per outcome: (key, label, count). Horizontal, because the
    labels are words and a phone is narrow."""
    width, left, right, row = 420, 112, 40, 32
    height = row * len(outcomes) + 8
    top = _nice_max(max((c for _, _, c in outcomes), default=0))
    plot_w = width - left - right
    out = []
    for i, (key, label, count) in enumerate(outcomes):
        y = 4 + i * row
        bar_w = plot_w * count / top if count else 0
        body = (
            _el("title", escape(f"{label}: {count}"))
            + _el(
                "text",
                escape(label),
                x=left - 10,
                y=y + row / 2 + 5,
                class_="chart-cat",
                text_anchor="end",
            )
            + _el("rect", x=left, y=y + 5, width=plot_w, height=row - 10, class_="chart-track")
            + _el(
                "rect",
                x=left,
                y=y + 5,
                width=f"{bar_w:.1f}",
                height=row - 10,
                class_=f"chart-bar bar-{key}",
            )
            + _el(
                "text",
                str(count),
                x=f"{left + bar_w + 8:.1f}",
                y=y + row / 2 + 5,
                class_="chart-value",
            )
        )
        out.append(_el("a", body, href=link(key)))
    desc = "; ".join(f"{label}: {count}" for _, label, count in outcomes)
    return _svg("chart-outcomes", width, height, "Outcomes of the missed calls", desc, "".join(out))


# --- unrecovered calls by weekday and hour -------------------------------------------------


def heat_level(count: int, most: int) -> int:
    """0 for none, else 1..HEAT_STEPS-1 by the share of the busiest cell."""
    if count <= 0 or most <= 0:
        return 0
    return max(1, math.ceil((HEAT_STEPS - 1) * count / most))


def heat_map(
    heat: Sequence[Sequence[int]],
    link: str | Callable[[int, int], str] | None,
    *,
    title: str = "Unrecovered calls by weekday and hour",
    noun: str = "unrecovered",
) -> Markup:
    """Calls, weekday rows x hour-of-day columns, darker for more. `link` is one URL for
    the whole map, a function (weekday, hour) -> URL for each cell, or None (the leak
    audit's calls are in an uploaded file, not behind a link)."""
    left, top, cell, gap = 44, 22, 24, 2
    width = left + 24 * cell + 8
    height = top + 7 * cell + 6
    most = max((n for row in heat for n in row), default=0)
    out = []
    for hour in range(0, 24, 3):
        label = f"{(hour % 12) or 12}{'a' if hour < 12 else 'p'}"
        out.append(_el("text", label, x=left + hour * cell + 2, y=top - 8, class_="chart-tick"))
    for day, row in enumerate(heat):
        y = top + day * cell
        out.append(
            _el(
                "text",
                WEEKDAY_NAMES[day],
                x=left - 8,
                y=y + cell / 2 + 5,
                class_="chart-tick",
                text_anchor="end",
            )
        )
        for hour, count in enumerate(row):
            tip = f"{WEEKDAY_NAMES[day]} {hour:02d}:00-{hour:02d}:59: {count} {noun}"
            mark = _el(
                "rect",
                _el("title", escape(tip)),
                x=left + hour * cell,
                y=y,
                width=cell - gap,
                height=cell - gap,
                rx=3,
                class_=f"heat heat-{heat_level(count, most)}",
            )
            out.append(_el("a", mark, href=link(day, hour)) if callable(link) else mark)
    busiest = sorted(
        ((n, d, h) for d, row in enumerate(heat) for h, n in enumerate(row) if n), reverse=True
    )[:5]
    desc = (
        f"No {noun} calls in this range."
        if not busiest
        else f"Most {noun} calls: "
        + "; ".join(f"{WEEKDAY_NAMES[d]} {h:02d}:00: {n}" for n, d, h in busiest)
        + ". Every cell is in the table below."
    )
    body = "".join(out)
    if isinstance(link, str):
        body = _el("a", body, href=link)
    return _svg("chart-heat", width, height, title, desc, body)


# --- time to first text --------------------------------------------------------------------


def ttft_labels() -> list[str]:
    """The buckets' names: under 0.5 s, 0.5-1 s, ..., 30 s or more."""
    edges = [e / 1000 for e in TTFT_EDGES_MS]
    labels = [f"< {edges[0]:g} s"]
    labels += [f"{a:g}–{b:g} s" for a, b in zip(edges, edges[1:], strict=False)]
    labels.append(f"≥ {edges[-1]:g} s")
    return labels


def ttft_histogram(
    buckets: Sequence[int], never_texted: int, link: str | Callable[[int], str]
) -> Markup:
    """How long the first texts took: one column per bucket, and the calls never texted
    (opted out, blocked, or still failing) as their own column, set apart. `link` is one
    URL for the chart or a function of the column's index (the last: not texted)."""
    labels = [*ttft_labels(), "not texted"]
    counts = [*buckets, never_texted]
    width, left, bottom, plot_h, top_pad = 420, 4, 30, 140, 22
    height = top_pad + plot_h + bottom
    columns = len(counts)
    slot = (width - 2 * left) / columns
    top = _nice_max(max(counts, default=0))
    out = []
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        x = left + i * slot
        h = plot_h * count / top if count else 0
        y = top_pad + plot_h - h
        kind = "chart-bar bar-never" if i == columns - 1 else "chart-bar bar-ttft"
        pad = slot * 0.12
        column = "a" if callable(link) else "g"
        out.append(
            _el(
                column,
                _el("title", escape(f"{label}: {count}"))
                + _el(
                    "rect",
                    x=f"{x + pad:.1f}",
                    y=f"{y:.1f}",
                    width=f"{slot - 2 * pad:.1f}",
                    height=f"{h:.1f}",
                    class_=kind,
                )
                + _el(
                    "text",
                    str(count),
                    x=f"{x + slot / 2:.1f}",
                    y=f"{y - 6:.1f}",
                    class_="chart-value",
                    text_anchor="middle",
                )
                + _el(
                    "text",
                    escape(label),
                    x=f"{x + slot / 2:.1f}",
                    y=top_pad + plot_h + 20,
                    class_="chart-tick",
                    text_anchor="middle",
                ),
                href=link(i) if callable(link) else None,
            )
        )
    out.append(
        _el(
            "line",
            x1=left,
            x2=width - left,
            y1=top_pad + plot_h,
            y2=top_pad + plot_h,
            class_="chart-axis",
        )
    )
    desc = "; ".join(f"{label}: {count}" for label, count in zip(labels, counts, strict=True))
    body = "".join(out)
    if isinstance(link, str):
        body = _el("a", body, href=link)
    return _svg("chart-ttft", width, height, "Time to first text", desc, body)
