"""Sign-in throttling: failed sign-ins counted per account and per client address in a
moving window, shared by every web process through Redis (memory on the embedded default).

Only failures count: the right password does not use one up. Once an account has had too
many, it answers 429 whatever is typed, so guessing on stops paying; the owner learns of it
from the audit log (LOGIN_THROTTLED), not from a message that would tell an attacker which
emails exist. An unknown email is counted and refused the same way.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Blocked:
    retry_after_s: int
    by: str  # "account" or "address": for the audit row, never for the page


class SignInThrottle:
    def __init__(
        self,
        storage: Storage,
        *,
        per_account: str = "10/15minutes",
        per_address: str = "50/15minutes",
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._account: RateLimitItem = parse(per_account)
        self._address: RateLimitItem = parse(per_address)

    @classmethod
    def from_url(cls, redis_url: str, **limits: str) -> SignInThrottle:
        """Redis when the install has one (production), else this process's memory."""
        storage = storage_from_string(redis_url if redis_url else "memory://")
        assert isinstance(storage, Storage)  # not one of limits' asyncio storages
        return cls(storage, **limits)

    def blocked(self, account: str, address: str) -> Blocked | None:
        for item, key, by in (
            (self._account, account, "account"),
            (self._address, address, "address"),
        ):
            if not self._limiter.test(item, "sign-in", by, key):
                reset_at = self._limiter.get_window_stats(item, "sign-in", by, key).reset_time
                return Blocked(max(1, math.ceil(reset_at - time.time())), by)
        return None

    def failed(self, account: str, address: str) -> None:
        self._limiter.hit(self._account, "sign-in", "account", account)
        self._limiter.hit(self._address, "sign-in", "address", address)

    def succeeded(self, account: str) -> None:
        # A typo or two before the right password should not count towards a lock-out later.
        self._limiter.clear(self._account, "sign-in", "account", account)
