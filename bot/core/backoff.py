"""Waits that double: how long to wait before trying again, and how long a
client that keeps failing must wait before it may try again.

`Doubling` paces a caller retrying something that is only briefly busy (a
customer's lock, a store that is restarting); `Backoff` is the penalty a
client earns by repeated failures (wrong link codes, wrong passwords).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Doubling:
    """Delays `first`, `2 * first`, ... up to `cap`, forever."""

    first: float
    cap: float

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.cap)


# A customer's turn holds its lock for milliseconds: poll quickly at first.
LOCK_POLL = Doubling(first=0.005, cap=0.1)


async def poll_until(attempt: Callable[[], Awaitable[T | None]], *, within_seconds: float,
                     pace: Doubling = LOCK_POLL) -> T | None:
    """`attempt()` until it returns something other than None, sleeping the
    pace's delays in between; None once `within_seconds` have passed."""
    deadline = time.monotonic() + within_seconds
    for delay in pace.delays():
        result = await attempt()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: the delays never end")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempts under one key slow down: the first `free` go through at once;
    after that each must come `first_delay * 2**k` seconds (at most
    `max_delay`) after the one before it, or is refused. Refused attempts
    count too, so hammering only pushes the next chance further away. A key
    is forgotten `window_seconds` after its last delay ends."""

    free: int
    first_delay: float
    max_delay: float
    window_seconds: int

    def delay(self, count: int) -> float:
        """The wait that the `count`-th attempt imposes on the next one."""
        if count < self.free:
            return 0.0
        # The exponent is capped so huge counts stay finite floats.
        return float(min(self.max_delay, self.first_delay * 2 ** min(count - self.free, 40)))
