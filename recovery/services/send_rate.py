"""Provider limits: a token bucket per sending number, so a burst waits with us.

A US long code may send about one segment a second; past that the provider queues texts
(for hours, at worst) or carriers filter them. So every text takes its segments from its
sending number's bucket before it goes to the provider; a text that finds the bucket
empty waits its turn (`outreach.deliver` puts it back to retry when the bucket refills).

Urgent texts (the 911 guidance, a page) jump the queue: they always take their tokens,
even into debt, and the texts waiting behind them wait that much longer. Taken into debt,
they are a reservation, not a licence: an urgent text goes when its tokens would have been
there (the wait `take` answers, which only the urgent texts before it add to), so the
number never sends faster than its bucket, whatever is urgent.

The buckets live in Redis in production (one Lua script: read, refill, take, write, in
one atomic step across every worker), and in the worker's memory on the embedded default
(`recovery run` has one worker process). Redis away: texts go unthrottled, with a
warning, rather than not at all.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

log = logging.getLogger(__name__)

KEY_PREFIX = "recovery:send-rate:"


class TokenBuckets(Protocol):
    def take(self, key: str, cost: float, rate: float, now: float, *, urgent: bool) -> float:
        """Take `cost` tokens from the bucket `key` (refilled at `rate` a second, holding
        at most `burst_for(rate)`) at `now` (seconds). Returns 0 when taken, else how many
        seconds until they would be there: nothing taken, or for `urgent` (which always
        takes) the moment its reservation falls due."""
        ...


def burst_for(rate: float) -> float:
    # A bucket holds one second's worth, and at least one whole segment: a text of two
    # segments on a 1/s number goes when two seconds' tokens are there, not never.
    return max(rate, 1.0)


def take_from(
    tokens: float, stamp: float, cost: float, rate: float, now: float, urgent: bool
) -> tuple[float, float]:
    """The bucket arithmetic, shared by both stores: (tokens left, seconds to wait)."""
    burst = burst_for(rate)
    tokens = min(burst, tokens + max(0.0, now - stamp) * rate)
    need = min(cost, burst)  # a long text cannot wait for more than the bucket holds
    if tokens >= need:
        return tokens - cost, 0.0
    wait = (need - tokens) / rate
    return (tokens - cost, wait) if urgent else (tokens, wait)


class MemoryBuckets:
    """One process's buckets (the embedded default)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float, rate: float, now: float, *, urgent: bool) -> float:
        with self._lock:
            tokens, stamp = self._buckets.get(key, (burst_for(rate), now))
            left, wait = take_from(tokens, stamp, cost, rate, now, urgent)
            self._buckets[key] = (left, max(stamp, now))
            return wait


# The same arithmetic as take_from, in one atomic step on the Redis server.
_TAKE = """
local rate = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local urgent = ARGV[4] == '1'
local burst = math.max(rate, 1.0)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(held[1]) or burst
local stamp = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local need = math.min(cost, burst)
local wait = 0
if tokens < need then
  wait = (need - tokens) / rate
end
if urgent or wait == 0 then
  tokens = tokens - cost
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(math.max(stamp, now)))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 3600)
return tostring(wait)
"""


class RedisBuckets:
    """Every worker's buckets, in Redis."""

    def __init__(self, client: Any) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self._take = client.register_script(_TAKE)

    def take(self, key: str, cost: float, rate: float, now: float, *, urgent: bool) -> float:
        try:
            answer = self._take(keys=[KEY_PREFIX + key], args=[rate, cost, now, int(urgent)])
        except self._errors as exc:
            log.warning("send rate: Redis unavailable (%s); sending unthrottled", exc)
            return 0.0
        return float(answer)
