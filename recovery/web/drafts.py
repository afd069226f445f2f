"""What someone typed into a form when their session had already expired.

A nurse writes a long note, the shift's session ends, she presses Complete: the note must
not be lost. The form's fields are kept (encrypted: a note can hold PHI, and the session is
a cookie the browser stores) across signing in again, and the page the form was on shows
them back in its fields, once. Nothing was done with them: she checks and sends again.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, g, request, session
from werkzeug.wrappers import Response

from recovery.web import runtime_of

SESSION_KEY = "draft"
# A signed cookie holds about 4 KB; a draft bigger than that is cut, not refused.
MAX_FIELD_CHARS = 2000
SKIPPED_FIELDS = frozenset({"csrf_token", "next", "password"})


def keep_posted_form() -> None:
    """Keep this POST's fields (not its token or passwords) for after signing in again."""
    fields = {
        name: value[:MAX_FIELD_CHARS]
        for name, value in request.form.items()
        if name not in SKIPPED_FIELDS and value.strip()
    }
    if not fields:
        return
    plain = json.dumps({"action": request.path, "fields": fields})
    session[SESSION_KEY] = runtime_of(current_app).cipher.encrypt(plain)


def carry_over() -> str | None:
    """The kept draft, to put back after signing in clears the session."""
    value = session.get(SESSION_KEY)
    return value if isinstance(value, str) else None


def restore(value: str | None) -> None:
    if value:
        session[SESSION_KEY] = value


def _draft() -> dict[str, Any] | None:
    if "draft" not in g:
        g.draft = None
        value = session.get(SESSION_KEY)
        if isinstance(value, str):
            try:
                g.draft = json.loads(runtime_of(current_app).cipher.decrypt(value))
            except ValueError:
                session.pop(SESSION_KEY, None)
    draft: dict[str, Any] | None = g.draft
    return draft


def kept(action: str, name: str) -> str:
    """The value typed into field `name` of the form posting to `action`, or ""."""
    draft = _draft()
    if not draft or draft.get("action") != action:
        return ""
    g.draft_shown = True
    return str(draft.get("fields", {}).get(name, ""))


def _forget_shown(response: Response) -> Response:
    # Shown once: a reload after that is a fresh form.
    if g.get("draft_shown"):
        session.pop(SESSION_KEY, None)
    return response


def register(app: Flask) -> None:
    app.after_request(_forget_shown)
    app.jinja_env.globals.update(kept=kept)
