"""gunicorn's access log, through our logger class: no booking token, no page code, no
phone number, no cookie or token, whatever the format prints."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from recovery.log import mask_line
from recovery.web.access_log import AccessLogger


def test_links_numbers_and_credentials_are_masked_in_every_atom() -> None:
    logger = AccessLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/b/Vfw5ZRdwS44hN7ny?from=%2B15125550199",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/b/Vfw5ZRdwS44hN7ny",
        "QUERY_STRING": "caller=+15125550199",
        "HTTP_REFERER": "https://recovery.example.com/p/4821",
        "REMOTE_ADDR": "127.0.0.1",
    }
    response = SimpleNamespace(status="302 FOUND", sent=0, headers=[("Set-Cookie", "session=s3")])
    request = SimpleNamespace(headers=[("COOKIE", "session=s3"), ("AUTHORIZATION", "Bearer rcv_x")])

    atoms = logger.atoms(response, request, environ, timedelta(0))

    line = logger.cfg.access_log_format % atoms
    assert "Vfw5ZRdwS44hN7ny" not in line and "/b/***" in line
    assert "4821" not in line and "/p/***" in line
    assert "5125550199" not in line and "5125550199" not in atoms["q"]
    assert atoms["{cookie}i"] == atoms["{authorization}i"] == atoms["{set-cookie}o"] == "-"


def test_our_own_log_lines_cut_links_too() -> None:
    assert mask_line("clicked http://x/b/Vfw5ZRdwS44hN7ny from +15125550199") == (
        "clicked http://x/b/*** from +1********99"
    )
