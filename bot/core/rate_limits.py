"""Per-client limits: how much one client may ask of Segue in a while.

Two kinds, by cost. What grows shared state (new web chat sessions, link
codes, handoff requests, wrong link codes) is counted in the store, so the
limit holds across every worker. Ordinary web chat messages are counted in
process with token buckets: a shared counter would add a store round trip
to every turn, and each worker holding its own bucket still bounds a flood.

Every subject is counted both for itself (a session, a customer) and for the
client address it comes from, so opening many sessions does not multiply a
client's allowance. `SEGUE_RATE_LIMITS=off` turns all of it off.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.core import metrics
from bot.core.ports import CounterStore


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` events per `window_seconds`, counted per subject."""

    name: str
    count: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket: `burst` at once, then `per_second` on average; `name`
    labels its refusals in the metrics."""

    burst: float
    per_second: float
    name: str = "rate"

    def share(self, holders: int) -> Rate:
        """One of `holders` equal parts of this rate (for each of the
        processes that count it side by side, so that together they hold
        the whole), never less than one token at once."""
        if holders <= 1:
            return self
        return Rate(max(1.0, self.burst / holders), self.per_second / holders, self.name)


# Defaults sized for a busy office behind one address: fifty people starting
# chats and talking at once, at a person's pace, stay well inside them.
NEW_SESSIONS_PER_ADDRESS = Limit("sessions-addr", 120, 600)
LINK_CODES_PER_CUSTOMER = Limit("codes-cust", 5, 3600)
LINK_CODES_PER_ADDRESS = Limit("codes-addr", 60, 3600)
HANDOFFS_PER_CUSTOMER = Limit("handoffs-cust", 5, 3600)
HANDOFFS_PER_ADDRESS = Limit("handoffs-addr", 60, 3600)
# Notes share the history's cap with what the customer said: a flood of them
# would push the customer's own messages out.
NOTES_PER_AGENT = Limit("notes-agent", 120, 3600)
NOTES_PER_CUSTOMER = Limit("notes-cust", 60, 3600)
# The public API: every call of a key, and what reaches one customer from the
# business (a loop in a caller's code must not flood a person).
API_CALLS_PER_KEY = Limit("api-key", 600, 60)
API_SENDS_PER_CUSTOMER = Limit("api-sends-cust", 30, 3600)
MESSAGES_PER_SESSION = Rate(burst=20, per_second=0.5, name="messages-session")
MESSAGES_PER_ADDRESS = Rate(burst=400, per_second=20, name="messages-addr")


class RateLimiter:
    """Shared fixed-window counters in the store."""

    def __init__(self, counters: CounterStore, *, enabled: bool = True) -> None:
        self.counters = counters
        self.enabled = enabled

    async def allow(self, limit: Limit, subject: str) -> bool:
        """Count one event of `subject`; False once it is over the limit."""
        if not self.enabled:
            return True
        count = await self.counters.incr(f"rate:{limit.name}:{subject}", limit.window_seconds)
        if count > limit.count:
            metrics.rate_limited(limit.name).inc()
            return False
        return True

    async def allow_all(self, checks: list[tuple[Limit, str | None]]) -> bool:
        """Count the event against each (limit, subject); subjects that are
        None (an address a channel does not know) are skipped."""
        allowed = True
        for limit, subject in checks:
            if subject is not None and not await self.allow(limit, subject):
                allowed = False
        return allowed


class LocalBuckets:
    """Token buckets kept in this process, the least recently used dropped
    first so that a flood of subjects cannot grow memory without bound."""

    def __init__(self, rate: Rate, *, enabled: bool = True, max_subjects: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.enabled = enabled
        self.max_subjects = max_subjects
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._refused = metrics.rate_limited(rate.name)

    def take(self, subject: str) -> float:
        """Take a token for `subject`: 0 if there was one, else the seconds
        until there will be (nothing is taken then)."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, since = self._buckets.pop(subject, (self.rate.burst, now))
        tokens = min(self.rate.burst, tokens + (now - since) * self.rate.per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate.per_second
            self._refused.inc()
        self._buckets[subject] = (tokens, now)
        if len(self._buckets) > self.max_subjects:
            self._buckets.popitem(last=False)
        return wait

    def give_back(self, subject: str) -> None:
        """Return a token taken for an event that was refused elsewhere."""
        entry = self._buckets.get(subject)
        if entry is not None:
            self._buckets[subject] = (min(self.rate.burst, entry[0] + 1), entry[1])
