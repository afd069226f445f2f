"""Logging set-up: one format for every process, and no phone number in any line."""

from __future__ import annotations

import logging

from recovery.domain.phones import mask_all


class MaskPhonesFilter(logging.Filter):
    """A safety net under `phones.mask()`: whatever a log call interpolates (an exception
    text, a provider's error message with the number in it), no full number is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_all(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(f, MaskPhonesFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskPhonesFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
