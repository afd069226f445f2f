"""SMS templates: sandboxed, allow-listed, refused at load when they could leak PHI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from recovery.config import TEMPLATES_DIR
from recovery.domain.templates import (
    ALLOWED_VARIABLES,
    SmsContext,
    SmsTemplates,
    TemplateError,
    clean_sms,
)

CONTEXT = SmsContext(practice_name="Valley Family Clinic", practice_phone="(512) 555-0100")


def folder_with(tmp_path: Path, source: str, name: str = "custom") -> Path:
    folder = tmp_path / "sms"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.txt").write_text(source, encoding="utf-8")
    return folder


def test_every_shipped_template_loads(templates: SmsTemplates) -> None:
    shipped = sorted(path.stem for path in (TEMPLATES_DIR / "sms").glob("*.txt"))

    assert shipped
    assert templates.names() == shipped
    assert "first_text" in shipped


def test_first_text_names_the_practice_the_four_keywords_and_stop(
    templates: SmsTemplates,
) -> None:
    text = templates.render("first_text", CONTEXT)

    assert text == (
        "Valley Family Clinic: sorry we missed your call! How can we help? Reply with a number:\n"
        "1 BOOK a visit\n"
        "2 BILLING question\n"
        "3 REFILL a prescription\n"
        "4 URGENT\n"
        "If this is an emergency, call 911. Reply STOP to opt out."
    )


def test_first_text_carries_nothing_but_the_practice(templates: SmsTemplates) -> None:
    context = SmsContext(
        practice_name="Valley Family Clinic",
        practice_phone="(512) 555-0100",
        link="https://book.example.com/valley-family",
    )
    text = templates.render("first_text", context)
    other = templates.render("first_text", dataclasses.replace(context, practice_name="Eastside"))

    assert text.replace("Valley Family Clinic", "Eastside") == other


def test_rendering_an_unknown_template_is_an_error(templates: SmsTemplates) -> None:
    with pytest.raises(TemplateError, match="no SMS template named 'nope'"):
        templates.render("nope", CONTEXT)


@pytest.mark.parametrize("variable", ["caller", "patient_name", "reason"])
def test_template_using_a_variable_outside_the_allow_list_is_refused_at_load(
    tmp_path: Path, variable: str
) -> None:
    folder = folder_with(tmp_path, f"{{{{ practice_name }}}}: hi {{{{ {variable} }}}}")

    with pytest.raises(TemplateError) as excinfo:
        SmsTemplates(folder)

    assert f"uses {variable};" in str(excinfo.value)
    assert "SMS template custom" in str(excinfo.value)


def test_template_that_does_not_name_the_practice_is_refused(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "We missed your call. Reply STOP to opt out.")

    with pytest.raises(TemplateError, match="must name the practice"):
        SmsTemplates(folder)


def test_template_that_sets_practice_name_itself_is_refused(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, '{% set practice_name = "Anyone" %}{{ practice_name }}: hi')

    with pytest.raises(TemplateError, match="must name the practice"):
        SmsTemplates(folder)


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "{{ practice_name }}: hi\nReply STOP\n{% if %}\n")

    with pytest.raises(TemplateError, match=r"SMS template custom: line 3: "):
        SmsTemplates(folder)


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no SMS templates"):
        SmsTemplates(tmp_path)


@pytest.mark.parametrize(
    "expression",
    [
        "practice_name.__class__",
        "practice_name.__class__.__mro__",
        "keywords.__class__.__subclasses__()",
        "practice_name.__init__.__globals__",
    ],
)
def test_reaching_into_python_objects_raises_a_security_error_at_render(
    tmp_path: Path, expression: str
) -> None:
    # The variable is allowed, so the template loads; the sandbox stops it at render time
    # (StrictUndefined turns the unsafe attribute into an error instead of an empty string).
    templates = SmsTemplates(
        folder_with(tmp_path, f"{{{{ practice_name }}}} {{{{ {expression} }}}}")
    )

    with pytest.raises(SecurityError, match="unsafe"):
        templates.render("custom", CONTEXT)


def test_clean_sms_replaces_characters_that_would_force_ucs2() -> None:
    # One of these in a text switches it to UCS-2: 70 characters a segment instead of 160,
    # so the practice pays twice.
    text = clean_sms(
        "Valley\u00a0Family: we\u2019re sorry \u201cyou\u201d "
        "\u2018missed\u2019 us \u2013 ok\u2026  \n"
    )

    assert text == "Valley Family: we're sorry \"you\" 'missed' us - ok..."
    assert text.isascii()


def test_clean_sms_trims_trailing_spaces_and_outer_blank_lines() -> None:
    assert clean_sms("\n  hello   \nworld  \n\n") == "hello\nworld"


def test_sms_context_holds_exactly_the_allow_listed_fields() -> None:
    fields = {f.name for f in dataclasses.fields(SmsContext)}

    assert fields == ALLOWED_VARIABLES
    assert "practice_name" in fields
    assert not fields & {"caller", "patient_name", "to_number", "body"}
