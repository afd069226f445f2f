"""Generated practices and callers: many clinics, and a fresh caller for every missed call.

Every missed call must come from a number that has not called before, or the episode rule
(repeat calls from one caller join one conversation) would rightly send no second text and
the benchmark would count a missing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from recovery.domain.phones import parse_number

# Real US area codes, so that phonenumbers (and the app) accept the callers as valid.
CALLER_AREAS = ("212", "213", "305", "312", "404", "415", "503", "602", "617", "713", "720")
TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
)
ALL_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@dataclass(frozen=True)
class BenchPractice:
    slug: str
    name: str
    numbers: tuple[str, ...]
    forward_to: str
    timezone: str
    visit_value: int

    @property
    def on_call(self) -> str:
        """The first (and only) number on the practice's on-call roster: an urgent reply's
        page goes there. One per practice, so a page is matched to its practice."""
        return self.forward_to


def practice_numbers(index: int) -> tuple[str, str]:
    """Two lines per practice in the 555-01XX range (fictional, yet valid for phonenumbers):
    +1512555 0100..0199 holds 50 practices' two numbers, then other area codes follow."""
    areas = ("512", "737", "346", "469")
    area = areas[(index * 2) // 100]
    first = (index * 2) % 100
    return (f"+1{area}5550{100 + first}", f"+1{area}5550{101 + first}")


def make_practices(count: int = 50) -> list[BenchPractice]:
    if count > 200:
        raise ValueError("at most 200 practices")
    practices = []
    for i in range(count):
        numbers = practice_numbers(i)
        forward_area = ("214", "281", "210", "915")[(i * 2) // 100]
        practices.append(
            BenchPractice(
                slug=f"bench-clinic-{i + 1:03d}",
                name=f"Bench Clinic {i + 1}",
                numbers=numbers,
                forward_to=f"+1{forward_area}5550{100 + i % 100}",
                timezone=TIMEZONES[i % len(TIMEZONES)],
                visit_value=120 + (i * 37) % 200,
            )
        )
    return practices


def write_practices_file(path: Path, practices: list[BenchPractice]) -> Path:
    document = {
        "practices": [
            {
                "slug": p.slug,
                "name": p.name,
                "timezone": p.timezone,
                "numbers": list(p.numbers),
                "forward_to": p.forward_to,
                "hours": ALL_DAY,
                "booking_url": f"https://book.example.com/{p.slug}",
                "visit_value": p.visit_value,
                "on_call": [{"name": "Dr. Bench", "phone": p.on_call}],
                # The bench measures our pipeline at 100 calls/s, not a carrier's limit:
                # numbers registered for more than a long code's 1 segment a second.
                "send_rate_per_s": 100,
            }
            for p in practices
        ]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


class CallerNumbers:
    """Distinct valid caller numbers, in a fixed order (the same run makes the same calls).

    Exchange 555 is skipped so a caller can never be one of the practices' own lines.
    """

    def __init__(self, start: int = 0) -> None:
        self._next = start

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while True:
            i = self._next
            self._next += 1
            area = CALLER_AREAS[i % len(CALLER_AREAS)]
            rest = i // len(CALLER_AREAS)
            exchange = 200 + (rest // 10_000) % 800
            line = rest % 10_000
            if exchange == 555 or exchange % 100 == 11:  # fictional range, N11 service codes
                continue
            number = f"+1{area}{exchange:03d}{line:04d}"
            if parse_number(number).e164 == number:
                return number

    def take(self, n: int) -> list[str]:
        return [next(self) for _ in range(n)]
