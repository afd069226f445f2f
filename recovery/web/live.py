"""Pages that update themselves: the one script they load, and the header that lets it run.

Every other page runs no script at all (see auth.secure_headers); these allow our own
static file and nothing else: no inline script, no other origin.
"""

from __future__ import annotations

from werkzeug.wrappers import Response


def allow_own_scripts(response: Response) -> Response:
    policy = response.headers.get("Content-Security-Policy")
    if policy and "script-src" not in policy:
        response.headers["Content-Security-Policy"] = (
            policy + "; script-src 'self'; connect-src 'self'"
        )
    return response
