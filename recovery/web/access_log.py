"""gunicorn's access log without secrets: `--logger-class recovery.web.access_log.AccessLogger`.

The stock access log writes each request line whole: a patient's booking link
(/b/<token>), a clinician's page link (/p/<code>), a phone number in a query. Here every
part a format can print is masked the way our own log lines are (recovery.log), and the
headers that carry credentials are never printed, whatever the format asks for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

from recovery.log import mask_line

# Atoms that quote what the client sent: the request line, path, query, referer.
_MASKED = ("r", "U", "q", "f")
# Headers that are credentials: a session cookie, an API token, a webhook's signature.
_SECRET_HEADERS = (
    "{cookie}i",
    "{authorization}i",
    "{set-cookie}o",
    "{x-twilio-signature}i",
    "{x-recovery-signature}i",
)


class AccessLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in _MASKED:
            if isinstance(atoms.get(key), str):
                # Decoded first: %2B15125550199 is a phone number too.
                atoms[key] = mask_line(unquote_plus(atoms[key]))
        for key in _SECRET_HEADERS:
            if key in atoms:
                atoms[key] = "-"
        return atoms
