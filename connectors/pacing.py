"""Keeping to a platform's send limits: callers wait their turn, nothing is
dropped.

Telegram and Slack both limit how fast a bot may post, per chat and overall,
and answer a burst over the limit with a refusal to retry later (Telegram's
flood control, Slack's 429). Replies of a turn come two or three at a time,
and messages the business sends first can come by the hundred: rather than
provoke those refusals, a `Pacer` spaces the sends out before they leave.

Each key (a chat, a channel) is a token bucket, and its sends go one at a
time, in the order they asked, so that a chat's messages arrive in order.
The overall limit is a schedule of the next free slot (virtual scheduling,
as in GCRA): each caller reserves its slot as it arrives, so callers of all
keys are served first come, first served, and a long queue costs no more
than its callers' sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Pace:
    """At most `burst` sends at once, then `per_second` on average."""

    burst: float
    per_second: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_second <= 0:
            raise ValueError("a pace needs a burst of at least 1 and a positive rate")

    def share(self, holders: int) -> Pace:
        """One of `holders` equal parts of this pace, for processes that send
        side by side under one limit; never less than one send at once."""
        if holders <= 1:
            return self
        return Pace(max(1.0, self.burst / holders), self.per_second / holders)


@dataclass(slots=True)
class _Bucket:
    """One key's tokens as of `since`, its callers in order, and how many
    callers hold or wait for it (it is kept while any do)."""

    tokens: float
    since: float
    turns: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Pacer:
    """Spaces out sends: per key by `per_key`, all keys together by `overall`.

    `clock` and `sleep` are injectable so that tests compute waits without
    spending real time. A key's bucket is forgotten once it is full again
    and no one uses it, so the number of keys kept stays bounded by the
    keys active in the last `burst / per_second` seconds."""

    def __init__(
        self,
        *,
        per_key: Pace,
        overall: Pace | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_key = per_key
        self.overall = overall
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[str, _Bucket] = {}
        # The overall schedule: when the next send would be on time if none
        # had gone before it (GCRA's theoretical arrival time).
        self._next_slot = clock()
        # A bucket refills completely within this: sweeping that often keeps
        # the kept keys bounded without looking at them on every send.
        self._sweep_every = per_key.burst / per_key.per_second
        self._next_sweep = self._next_slot + self._sweep_every

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        """Wait until one send to `key` may go, and hold `key` while it goes:
        the next send to `key` starts only once this one is done."""
        self._sweep()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.per_key.burst, self.clock())
        bucket.users += 1
        try:
            async with bucket.turns:
                await self._wait_for_token(bucket)
                await self._wait_for_slot()
                self._take(bucket)
                yield
        finally:
            bucket.users -= 1

    def tracked_keys(self) -> int:
        """How many keys have a bucket kept now."""
        return len(self._buckets)

    async def _wait_for_token(self, bucket: _Bucket) -> None:
        tokens = self._tokens(bucket, self.clock())
        if tokens < 1:
            await self.sleep((1 - tokens) / self.per_key.per_second)

    async def _wait_for_slot(self) -> None:
        """Reserve the next overall slot and sleep until it. The reservation
        is made before the sleep: whoever asks first goes first."""
        if self.overall is None:
            return
        interval = 1 / self.overall.per_second
        tolerance = (self.overall.burst - 1) * interval
        now = self.clock()
        start = max(now, self._next_slot - tolerance)
        self._next_slot = max(self._next_slot, now) + interval
        if start > now:
            await self.sleep(start - now)

    def _take(self, bucket: _Bucket) -> None:
        # Counted when the send goes, not when it asked: a send held back by
        # the overall limit still spaces the key's next one from itself.
        now = self.clock()
        bucket.tokens = self._tokens(bucket, now) - 1
        bucket.since = now

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        refill = (now - bucket.since) * self.per_key.per_second
        return min(self.per_key.burst, bucket.tokens + refill)

    def _sweep(self) -> None:
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_every
        idle = [key for key, bucket in self._buckets.items()
                if bucket.users == 0 and self._tokens(bucket, now) >= self.per_key.burst]
        for key in idle:
            del self._buckets[key]
