"""Patient-facing SMS templates: sandboxed, allow-listed, checked when loaded.

A text must never carry PHI. The only values a template can see are the fields of
`SmsContext` (the practice's name and number, the reply keywords, links we build), so no
caller data can reach one; a template that asks for anything else, or forgets to name the
practice, is refused when it is loaded, not discovered after it was sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from jinja2 import StrictUndefined, meta
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ALLOWED_VARIABLES = frozenset(
    {
        "practice_name",
        "practice_phone",
        "keywords",
        "help_keywords",
        "link",  # a URL we built: a tracked booking link, a page's staff link
        "callback_time",  # "Monday 9:00 AM": when staff will call back, from the SLA
        "reference",  # a page's short code, for on-call staff
    }
)
REQUIRED_VARIABLES = frozenset({"practice_name"})  # every text identifies the practice

# Characters that silently switch a text from GSM-7 to UCS-2, which halves the characters
# per segment and so doubles what the practice pays.
_UCS2_LOOKALIKES = {
    "\u00a0": " ",  # non-breaking space
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
}


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class SmsContext:
    practice_name: str
    practice_phone: str
    keywords: tuple[str, ...] = ("BOOK", "BILLING", "REFILL", "URGENT")
    help_keywords: tuple[str, ...] = ("STOP", "HELP")
    link: str = field(default="")
    callback_time: str = field(default="")
    reference: str = field(default="")


class SmsTemplates:
    """Every `*.txt` under a folder, validated at construction."""

    def __init__(self, folder: Path) -> None:
        self._env = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self._templates = {}
        paths = sorted(folder.glob("*.txt"))
        if not paths:
            raise TemplateError(f"no SMS templates in {folder}")
        for path in paths:
            source = path.read_text(encoding="utf-8")
            check_template(self._env, path.stem, source)
            self._templates[path.stem] = self._env.from_string(source)

    def names(self) -> list[str]:
        return sorted(self._templates)

    def render(self, name: str, context: SmsContext, language: str = "en") -> str:
        """Render `name` in the patient's language (`book.es.txt`), else in English."""
        template = self._templates.get(f"{name}.{language}") or self._templates.get(name)
        if template is None:
            raise TemplateError(f"no SMS template named {name!r}")
        return clean_sms(template.render(asdict(context)))


def check_template(env: ImmutableSandboxedEnvironment, name: str, source: str) -> None:
    try:
        parsed = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"SMS template {name}: line {exc.lineno}: {exc.message}") from exc
    used = meta.find_undeclared_variables(parsed)
    forbidden = used - ALLOWED_VARIABLES
    if forbidden:
        raise TemplateError(
            f"SMS template {name}: uses {', '.join(sorted(forbidden))}; "
            f"a text may only use {', '.join(sorted(ALLOWED_VARIABLES))}"
        )
    missing = REQUIRED_VARIABLES - used
    if missing:
        raise TemplateError(
            f"SMS template {name}: must name the practice ({{{{ practice_name }}}})"
        )


def clean_sms(text: str) -> str:
    for char, plain in _UCS2_LOOKALIKES.items():
        text = text.replace(char, plain)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


_DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo"),
}


def callback_phrase(when: datetime, now: datetime, language: str = "en") -> str:
    """When staff will call back, as a patient reads it: "today at 2:00 PM", "el lunes a
    las 9:00". `when` and `now` are in the practice's time zone; a day more than six days
    out gets its date so "Monday" is never the wrong Monday."""
    days_ahead = (when.date() - now.date()).days
    if language == "es":
        clock = f"{when.hour}:{when.minute:02d}"
        if days_ahead == 0:
            return f"hoy a las {clock}"
        if days_ahead == 1:
            return f"mañana a las {clock}"  # ñ is in GSM-7; á and é would not all be
        day = _DAYS["es"][when.weekday()]
        suffix = f" {when.day}/{when.month}" if days_ahead > 6 else ""
        return f"el {day}{suffix} a las {clock}"
    hour = when.hour % 12 or 12
    clock = f"{hour}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}"
    if days_ahead == 0:
        return f"today at {clock}"
    if days_ahead == 1:
        return f"tomorrow at {clock}"
    day = _DAYS["en"][when.weekday()]
    suffix = f" {when.strftime('%b')} {when.day}" if days_ahead > 6 else ""
    return f"{day}{suffix} at {clock}"


def _sandbox() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def check_saved_reply(title: str, source: str) -> None:
    """A practice's saved reply is a template like the files: the same allow-list, and it
    names the practice. Refused when saved, never found out when sent."""
    check_template(_sandbox(), f"saved reply {title!r}", source)


def render_saved_reply(source: str, context: SmsContext) -> str:
    return clean_sms(_sandbox().from_string(source).render(asdict(context)))
