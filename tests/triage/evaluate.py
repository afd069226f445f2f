"""Measure the triage rules on the labelled corpus: `make eval-triage`.

For each part of the corpus (tuning, held-out) and each language it prints:

- emergency recall: emergencies that got the 911 sentence and a page (URGENT);
- routine paged: routine replies (no symptom) that paged someone;
- clinical paged: clinical concerns (a symptom, no red flag) that paged someone;
- mentions paged: negated or past red flags, paged by policy (reported, not a goal);
- routed as intended: the intent and the clinical-concern flag are the labelled ones
  (an emergency is URGENT; a clinical concern carries its concern, and its intent is the
  labelled one; a routine reply carries none).

`--misses` lists the tuning part's misses, never the held-out part's: the held-out part
is kept out of the rules' development, so only its figures are shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recovery.domain.intents import Intent, classify

HERE = Path(__file__).parent
PARTS: dict[str, Path] = {"tuning": HERE / "tuning.tsv", "held-out": HERE / "heldout.tsv"}
TIERS = ("emergency", "mention", "clinical", "routine")
LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Case:
    text: str
    tier: str
    intent: Intent
    language: str
    category: str


@dataclass(frozen=True)
class Outcome:
    case: Case
    intent: Intent
    concerned: bool
    evidence: str

    @property
    def paged(self) -> bool:
        return self.intent is Intent.URGENT

    @property
    def as_intended(self) -> bool:
        if self.case.tier in ("emergency", "mention"):
            return self.paged
        wants_concern = self.case.tier == "clinical"
        return self.intent is self.case.intent and self.concerned is wants_concern


def load(path: Path) -> list[Case]:
    cases: list[Case] = []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows = [line for line in lines if not line.startswith("#")]
    for number, line in enumerate(rows[1:], start=2):  # rows[0] is the column header
        fields = line.split("\t")
        if len(fields) != 5 or fields[1] not in TIERS or fields[3] not in LANGUAGES:
            raise ValueError(f"{path.name}: bad row {number}: {line!r}")
        text, tier, intent, language, category = fields
        cases.append(Case(text, tier, Intent(intent), language, category))
    return cases


def run(cases: Iterable[Case]) -> list[Outcome]:
    outcomes = []
    for case in cases:
        result = classify(case.text)
        outcomes.append(Outcome(case, result.intent, bool(result.concerns), result.evidence))
    return outcomes


@dataclass(frozen=True)
class Figures:
    emergencies: int
    recalled: int
    routine: int
    routine_paged: int
    clinical: int
    clinical_paged: int
    mentions: int
    mentions_paged: int
    total: int
    as_intended: int

    @property
    def recall(self) -> float:
        return self.recalled / self.emergencies if self.emergencies else 1.0

    @property
    def routine_paged_share(self) -> float:
        return self.routine_paged / self.routine if self.routine else 0.0

    @property
    def clinical_paged_share(self) -> float:
        return self.clinical_paged / self.clinical if self.clinical else 0.0

    @property
    def intended_share(self) -> float:
        return self.as_intended / self.total if self.total else 1.0


def figures(outcomes: Sequence[Outcome]) -> Figures:
    def of(tier: str) -> list[Outcome]:
        return [o for o in outcomes if o.case.tier == tier]

    return Figures(
        emergencies=len(of("emergency")),
        recalled=sum(o.paged for o in of("emergency")),
        routine=len(of("routine")),
        routine_paged=sum(o.paged for o in of("routine")),
        clinical=len(of("clinical")),
        clinical_paged=sum(o.paged for o in of("clinical")),
        mentions=len(of("mention")),
        mentions_paged=sum(o.paged for o in of("mention")),
        total=len(outcomes),
        as_intended=sum(o.as_intended for o in outcomes),
    )


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}% ({part}/{whole})" if whole else "    - (0/0)"


def report(name: str, outcomes: Sequence[Outcome]) -> list[str]:
    lines = [f"{name} ({len(outcomes)} replies)"]
    header = (
        f"  {'lang':<5} {'emergency recall':<20} {'routine paged':<18} {'clinical paged':<18}"
        f" {'mentions paged':<18} {'routed as intended':<20}"
    )
    lines.append(header)
    for language in (*LANGUAGES, "all"):
        chosen = [o for o in outcomes if language in ("all", o.case.language)]
        f = figures(chosen)
        lines.append(
            f"  {language:<5} {_pct(f.recalled, f.emergencies):<20}"
            f" {_pct(f.routine_paged, f.routine):<18} {_pct(f.clinical_paged, f.clinical):<18}"
            f" {_pct(f.mentions_paged, f.mentions):<18} {_pct(f.as_intended, f.total):<20}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list the tuning part's misses")
    args = parser.parse_args(argv)
    results = {name: run(load(path)) for name, path in PARTS.items()}
    for name, outcomes in results.items():
        print("\n".join(report(name, outcomes)))
        print()
    if args.misses:
        for o in results["tuning"]:
            if not o.as_intended:
                print(
                    f"MISS [{o.case.tier}/{o.case.category}] {o.case.text!r}: "
                    f"got {o.intent.value} concern={o.concerned} ({o.evidence}), "
                    f"wanted {o.case.intent.value}"
                )
    held = figures(results["held-out"])
    goal_met = held.recall == 1.0 and held.routine_paged_share < 0.03
    print(
        "goal (held-out): 100% emergency recall, routine paged < 3%: "
        + ("met" if goal_met else "NOT met")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
