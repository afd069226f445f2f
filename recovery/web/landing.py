"""The front door: `/` tells a signed-out visitor what this is and where to sign in.

A signed-in user goes straight to their start page: a manager to the report, everyone
else to their queue.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template
from werkzeug.wrappers import Response

from recovery.web import runtime_of
from recovery.web.auth import current_viewer, home_path, no_one_can_sign_in, protect

bp = Blueprint("landing", __name__)
protect(bp)


def simulator_enabled() -> bool:
    # The simulator posts signed webhooks as if it were the phone company: only where no
    # real text can leave (the console provider records them instead of sending).
    return runtime_of(current_app).settings.sms_provider == "console"


@bp.get("/")
def home() -> Response | str:
    signed_in = current_viewer()
    if signed_in is not None:
        return redirect(home_path(signed_in))
    return render_template(
        "landing.html", simulator=simulator_enabled(), first_account=no_one_can_sign_in()
    )
