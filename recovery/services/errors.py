"""The two refusals every use case shares, so each edge answers them one way.

A service raises NotFound for a record that does not exist *or* belongs to another
practice (the edge answers 404 either way, so nobody learns which), and NotAllowed when
the user may see the thing but not do this to it (403). The message says why, for the page.
"""

from __future__ import annotations


class NotFound(Exception):
    """No such record, or one of another practice: answered 404 either way."""


class NotAllowed(Exception):
    """The user may see this but not do that (a front-desk user taking a page, a clerk
    reading the report, anyone but a manager or admin administering)."""
