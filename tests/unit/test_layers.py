"""The layers: the domain and the use cases know nothing of the web, the worker or Twilio."""

from __future__ import annotations

import json
import subprocess
import sys

# The edges: Flask and our pages, Celery, the Twilio client. recovery.domain and
# recovery.services are used by the web app, the worker and the CLI alike, so importing
# one of them must not pull an edge in (nor reach up into recovery.web for a label).
EDGES = ("flask", "celery", "twilio", "recovery.web")


def test_domain_and_services_import_no_framework_and_no_web_module() -> None:
    # A fresh interpreter: this process has imported Flask for other tests already.
    script = (
        "import importlib, json, pkgutil, sys\n"
        "import recovery.domain, recovery.services\n"
        "for package in (recovery.domain, recovery.services):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    loaded = json.loads(out)

    assert "recovery.services.staff" in loaded and "recovery.domain.states" in loaded
    edges = [m for m in loaded if any(m == e or m.startswith(e + ".") for e in EDGES)]
    assert edges == []
