"""Logging: whatever a log call carries, no full phone number is written."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from recovery.log import MaskPhonesFilter

NUMBER = "+15125550199"
DIGITS = "5125550199"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskPhonesFilter())
    logger = logging.getLogger("tests.unit.test_logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def test_number_in_the_message_is_written_masked(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    logger.info(f"text to {NUMBER} accepted")

    assert stream.getvalue() == "INFO text to +1********99 accepted\n"


def test_number_in_the_args_is_written_masked(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    logger.warning("message %s to %s refused: %s", 7, NUMBER, "twilio 400 21211")

    assert stream.getvalue() == "WARNING message 7 to +1********99 refused: twilio 400 21211\n"


def test_number_inside_an_exception_arg_is_written_masked(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    logger.error("provider said: %s", ValueError(f"The 'To' number {NUMBER} is not valid"))

    assert DIGITS not in stream.getvalue()
    assert "+1********99 is not valid" in stream.getvalue()


def test_number_inside_a_logged_traceback_is_written_masked(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    try:
        raise RuntimeError(f"UNIQUE constraint failed [parameters: ('{NUMBER}',)]")
    except RuntimeError:
        logger.exception("insert failed for message %s", 7)

    written = stream.getvalue()
    assert "Traceback (most recent call last)" in written
    assert "RuntimeError: UNIQUE constraint failed [parameters: ('+1********99',)]" in written
    assert DIGITS not in written


def test_line_without_a_number_is_written_unchanged(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    logger.info("sweeper re-queued %d text(s) at %s", 3, "2026-11-03 14:05:11")

    assert stream.getvalue() == "INFO sweeper re-queued 3 text(s) at 2026-11-03 14:05:11\n"
