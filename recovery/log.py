"""Logging set-up: one format for every process, and no phone number in any line."""

from __future__ import annotations

import logging
import re

from recovery.domain.phones import mask_all

# A patient's booking link (/b/<token>) and a clinician's page link (/p/<code>): whoever
# reads a log line with one whole could open the patient's booking or page.
_LINK = re.compile(r"(/[bp]/)[^/?#\s\"']+")


def mask_links(text: str) -> str:
    """/b/Vfw5ZRdwS44hN7ny -> /b/***: the kind of link stays, the secret part goes."""
    return _LINK.sub(r"\1***", text)


def mask_line(text: str) -> str:
    """What any log line may say: phone numbers masked, secret links cut."""
    return mask_links(mask_all(text))


class MaskPhonesFilter(logging.Filter):
    """A safety net under `phones.mask()`: whatever a log call interpolates (an exception
    text, a provider's error message with the number in it), no full number is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_line(message)
        if masked != message:
            record.msg, record.args = masked, None
        # A traceback is formatted after the filters run and carries exception texts
        # (SQLAlchemy's include the bound parameters): format it now, masked; formatters
        # reuse exc_text when it is set.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_line(record.exc_text)
        return True


# Libraries that log every request they make, headers and all, at INFO.
CHATTY_LOGGERS = ("twilio.http_client", "urllib3.connectionpool")


def quiet_chatty_loggers() -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO") -> None:
    quiet_chatty_loggers()
    root = logging.getLogger()
    if any(isinstance(f, MaskPhonesFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskPhonesFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
