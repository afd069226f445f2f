"""The practices file: validated with errors an admin can act on, loaded as an upsert."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.db import make_session_factory, session_scope
from recovery.models import Practice, PracticeNumber
from recovery.schemas.practices import PracticesFileError, parse_practices, read_practices
from recovery.services.practices import (
    LoadReport,
    PracticeDirectory,
    find_practice_by_forward_to,
    find_practice_by_number,
    load_practices,
)
from tests.conftest import PRACTICES_FILE
from tests.unit.conftest import copy_database

EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "examples" / "practices.yaml"

VALID = """\
practices:
  - slug: valley-family
    name: Valley Family Clinic
    timezone: America/Chicago
    numbers: ["+15125550100"]
    hours: {mon: ["08:00-17:00"]}
"""


def practice(slug: str, numbers: list[str], **extra: str) -> str:
    lines = [
        f"  - slug: {slug}",
        f"    name: {slug.title()}",
        "    timezone: America/Chicago",
        f"    numbers: [{', '.join(repr(n) for n in numbers)}]",
    ]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def document(*practices: str) -> str:
    return "practices:\n" + "".join(practices)


def refused(text: str) -> str:
    with pytest.raises(PracticesFileError) as excinfo:
        parse_practices(text, "practices.yaml")
    return str(excinfo.value)


# --- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [EXAMPLES_FILE, PRACTICES_FILE], ids=["examples", "fixtures"])
def test_shipped_practices_files_parse(path: Path) -> None:
    config = read_practices(path)

    slugs = [p.slug for p in config.practices]
    assert slugs
    assert "valley-family" in slugs
    for entry in config.practices:
        assert all(number.startswith("+") for number in entry.numbers)


def test_numbers_are_normalised_to_e164_and_holidays_kept_as_text() -> None:
    config = parse_practices(
        document(
            practice("a", ["(512) 555-0100"], holidays="[2026-12-25]", forward_to="512-555-0142")
        )
    )

    [entry] = config.practices
    assert entry.numbers == ["+15125550100"]
    assert entry.forward_to == "+15125550142"
    assert entry.holidays == ["2026-12-25"]


def test_bad_timezone_names_the_practice_and_the_key() -> None:
    message = refused(VALID.replace("America/Chicago", "Mars/Olympus_Mons"))

    assert message.startswith("practices.yaml: ")
    assert "practice valley-family: timezone:" in message
    assert "Mars/Olympus_Mons" in message


def test_bad_number_names_the_practice_and_the_key() -> None:
    message = refused(VALID.replace('"+15125550100"', '"555-0100"'))

    assert "practice valley-family: numbers:" in message
    assert "555-0100" in message


def test_bad_hours_name_the_practice_and_the_day() -> None:
    message = refused(VALID.replace('"08:00-17:00"', '"25:00-26:00"'))

    assert "practice valley-family: hours.mon:" in message
    assert "25:00" in message


def test_unknown_key_is_refused_with_its_name() -> None:
    message = refused(VALID + "    fax: '+15125550177'\n")

    assert "practice valley-family: fax: Extra inputs are not permitted" in message


def test_error_in_a_practice_without_a_slug_names_its_position() -> None:
    message = refused(document(practice("a", ["+15125550100"]), "  - {name: B}\n"))

    assert "practice #2: slug:" in message


def test_duplicate_slug_is_refused() -> None:
    message = refused(document(practice("a", ["+15125550100"]), practice("a", ["+15125550101"])))

    assert "practice a: slug is used twice" in message


def test_number_owned_by_two_practices_is_refused() -> None:
    message = refused(document(practice("a", ["+15125550100"]), practice("b", ["(512) 555-0100"])))

    assert "practice b: numbers: +15125550100 already belongs to a" in message


@pytest.mark.parametrize("text", ["practices: [", "practices:\n  - slug: a\n   name: x\n"])
def test_text_that_is_not_yaml_is_refused(text: str) -> None:
    assert refused(text).startswith("practices.yaml: not valid YAML")


@pytest.mark.parametrize("text", ["", "just words", "practices: []"])
def test_yaml_without_practices_is_refused(text: str) -> None:
    assert refused(text).startswith("practices.yaml: ")


def test_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(PracticesFileError) as excinfo:
        read_practices(path)

    assert str(excinfo.value) == f"{path}: No such file or directory"


# --- loading ---------------------------------------------------------------------------


@pytest.fixture
def empty_db(settings: Settings, empty_schema: Path) -> sessionmaker[Session]:
    return make_session_factory(copy_database(empty_schema, settings.effective_database_url))


def load(sessions: sessionmaker[Session], text: str) -> LoadReport:
    with session_scope(sessions) as session:
        return load_practices(session, parse_practices(text))


def numbers_by_practice(sessions: sessionmaker[Session]) -> dict[str, list[str]]:
    with sessions() as session:
        return {
            p.slug: [n.number for n in sorted(p.numbers, key=lambda n: n.position)]
            for p in session.scalars(select(Practice).order_by(Practice.slug))
        }


def ids(sessions: sessionmaker[Session]) -> tuple[dict[str, int], dict[str, int]]:
    with sessions() as session:
        practices = {p.slug: p.id for p in session.scalars(select(Practice))}
        numbers = {n.number: n.id for n in session.scalars(select(PracticeNumber))}
    return practices, numbers


def test_loading_twice_creates_then_updates_the_same_rows(
    empty_db: sessionmaker[Session],
) -> None:
    text = PRACTICES_FILE.read_text(encoding="utf-8")

    first = load(empty_db, text)
    first_ids = ids(empty_db)
    second = load(empty_db, text)

    assert first.created == ["valley-family", "always-open", "never-open"]
    assert first.updated == []
    assert second.created == []
    assert second.updated == ["valley-family", "always-open", "never-open"]
    assert ids(empty_db) == first_ids
    with empty_db() as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        assert valley.name == "Valley Family Clinic"
        assert valley.main_number == "+15125550100"
        assert valley.forward_to == "+15125550142"
        assert valley.holidays == ["2026-12-25"]
        assert valley.on_call[0] == {"name": "Dr. Rivera", "phone": "+15125550111"}


def test_changed_fields_are_updated(empty_db: sessionmaker[Session]) -> None:
    load(empty_db, document(practice("a", ["+15125550100"], episode_window_h="12")))
    load(
        empty_db,
        document(practice("a", ["+15125550100"], episode_window_h="24", visit_value="90")),
    )

    with empty_db() as session:
        loaded = session.scalars(select(Practice)).one()
        assert (loaded.episode_window_h, loaded.visit_value) == (24, 90)


def test_number_removed_from_the_file_is_removed_from_the_db(
    empty_db: sessionmaker[Session],
) -> None:
    load(empty_db, document(practice("a", ["+15125550100", "+15125550101"])))

    load(empty_db, document(practice("a", ["+15125550100"])))

    assert numbers_by_practice(empty_db) == {"a": ["+15125550100"]}
    with empty_db() as session:
        assert find_practice_by_number(session, "+15125550101") is None


def test_reordering_numbers_changes_the_main_number(empty_db: sessionmaker[Session]) -> None:
    load(empty_db, document(practice("a", ["+15125550100", "+15125550101"])))
    _, before = ids(empty_db)

    load(empty_db, document(practice("a", ["+15125550101", "+15125550100"])))

    with empty_db() as session:
        assert session.scalars(select(Practice)).one().main_number == "+15125550101"
    assert ids(empty_db)[1] == before  # the rows were kept, only their order changed


@pytest.mark.parametrize("gaining_first", [False, True], ids=["loser-first", "gainer-first"])
def test_number_moved_between_practices_in_one_file_loads(
    empty_db: sessionmaker[Session], gaining_first: bool
) -> None:
    load(
        empty_db,
        document(practice("a", ["+15125550100", "+15125550101"]), practice("b", ["+16175550100"])),
    )
    loser = practice("a", ["+15125550100"])
    gainer = practice("b", ["+16175550100", "+15125550101"])

    load(empty_db, document(gainer, loser) if gaining_first else document(loser, gainer))

    assert numbers_by_practice(empty_db) == {
        "a": ["+15125550100"],
        "b": ["+16175550100", "+15125550101"],
    }
    with empty_db() as session:
        found = find_practice_by_number(session, "+15125550101")
        assert found is not None and found.slug == "b"


def test_numbers_swapped_between_practices_load(empty_db: sessionmaker[Session]) -> None:
    load(empty_db, document(practice("a", ["+15125550100"]), practice("b", ["+16175550100"])))

    load(empty_db, document(practice("a", ["+16175550100"]), practice("b", ["+15125550100"])))

    assert numbers_by_practice(empty_db) == {"a": ["+16175550100"], "b": ["+15125550100"]}


def test_practice_is_found_by_its_forward_to_number(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        found = find_practice_by_forward_to(session, "+15125550142")
        assert found is not None and found.slug == "valley-family"
        assert find_practice_by_forward_to(session, "+15125550100") is None


# --- the per-process directory -----------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_directory_remembers_a_practice_until_its_ttl_passes(
    empty_db: sessionmaker[Session],
) -> None:
    load(empty_db, document(practice("a", ["+15125550100", "+15125550101"])))
    clock = Ticks()
    directory = PracticeDirectory(empty_db, ttl_s=30, clock=clock)

    first = directory.by_number("+15125550101")
    assert first is not None and first.slug == "a"
    # Detached, with its numbers loaded: readable without a session.
    assert [n.number for n in first.numbers] == ["+15125550100", "+15125550101"]
    assert first.main_number == "+15125550100"

    load(empty_db, document(practice("b", ["+15125550101"]), practice("a", ["+15125550100"])))
    clock.now += 29
    remembered = directory.by_number("+15125550101")
    assert remembered is first  # within the ttl: no query, the edit not seen yet

    clock.now += 2
    fresh = directory.by_number("+15125550101")
    assert fresh is not None and fresh.slug == "b"


def test_directory_does_not_remember_an_unknown_number(empty_db: sessionmaker[Session]) -> None:
    directory = PracticeDirectory(empty_db, ttl_s=30, clock=Ticks())
    assert directory.by_number("+15125550100") is None

    load(empty_db, document(practice("a", ["+15125550100"])))

    found = directory.by_number("+15125550100")
    assert found is not None and found.slug == "a"
