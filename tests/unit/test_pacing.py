"""The pacer on a virtual clock: the waits it computes and the order it
releases callers in, with no real time spent."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest

from connectors.pacing import Pace, Pacer


class VirtualTime:
    """A clock that moves only when every task is asleep: then to the
    earliest wake-up, in the order the sleeps were asked."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._wakeups: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._wakeups, (self.now + seconds, next(self._order), woken))
        await woken

    async def run(self, *tasks: asyncio.Task[None]) -> None:
        """Run `tasks` to their end, moving the clock whenever all sleep."""
        while not all(task.done() for task in tasks):
            await _settle()
            if self._wakeups and not all(task.done() for task in tasks):
                at, _, woken = heapq.heappop(self._wakeups)
                self.now = max(self.now, at)
                woken.set_result(None)
        for task in tasks:
            task.result()


async def _settle() -> None:
    # Enough loop rounds for every woken task to reach its next sleep.
    for _ in range(20):
        await asyncio.sleep(0)


def pacer_on(time: VirtualTime, *, per_key: Pace, overall: Pace | None = None) -> Pacer:
    return Pacer(per_key=per_key, overall=overall, clock=time.clock, sleep=time.sleep)


async def send_all(time: VirtualTime, pacer: Pacer, keys: list[str]) -> list[tuple[str, float]]:
    """Ask for a turn for each key at once, in this order; who went when."""
    sent: list[tuple[str, float]] = []

    async def send(index: int, key: str) -> None:
        async with pacer.turn(key):
            sent.append((f"{key}{index}", time.now))

    tasks = [asyncio.create_task(send(i, key)) for i, key in enumerate(keys)]
    await time.run(*tasks)
    return sent


async def test_a_burst_of_three_goes_at_once_then_one_a_second() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=3, per_second=1))
    sent = await send_all(time, pacer, ["a"] * 5)
    assert sent == [("a0", 0.0), ("a1", 0.0), ("a2", 0.0), ("a3", 1.0), ("a4", 2.0)]
    assert time.sleeps == [1.0, 1.0]


async def test_sequential_sends_wait_the_computed_time() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=3, per_second=1))
    for _ in range(3):
        async with pacer.turn("a"):
            pass
    time.now = 0.25  # a quarter of a token back
    task = asyncio.create_task(_one_turn(pacer, "a"))
    await time.run(task)
    assert time.sleeps == [0.75]
    assert time.now == 1.0


async def _one_turn(pacer: Pacer, key: str) -> None:
    async with pacer.turn(key):
        pass


async def test_keys_are_paced_apart() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=1, per_second=1))
    sent = await send_all(time, pacer, ["a", "b", "a", "b"])
    assert sorted(sent, key=lambda s: (s[1], s[0])) == [
        ("a0", 0.0), ("b1", 0.0), ("a2", 1.0), ("b3", 1.0)]


async def test_one_key_sends_in_the_order_asked() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=3, per_second=1),
                     overall=Pace(burst=2, per_second=4))
    sent = await send_all(time, pacer, ["a"] * 8)
    assert [name for name, _ in sent] == [f"a{i}" for i in range(8)]


async def test_the_overall_limit_serves_every_key_first_come_first_served() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=3, per_second=1),
                     overall=Pace(burst=2, per_second=4))
    keys = [f"k{i}" for i in range(6)]
    sent = await send_all(time, pacer, keys)
    # Two at once, then one every quarter of a second, in the order asked.
    assert sent == [("k00", 0.0), ("k11", 0.0), ("k22", 0.25), ("k33", 0.5), ("k44", 0.75),
                    ("k55", 1.0)]


async def test_a_key_held_back_overall_counts_its_tokens_from_when_it_went() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=1, per_second=1),
                     overall=Pace(burst=1, per_second=1))
    sent = await send_all(time, pacer, ["b", "a", "a"])
    # a1 waits a second for the slot b took; a2 then waits a second from a1.
    assert sent == [("b0", 0.0), ("a1", 1.0), ("a2", 2.0)]


async def test_nothing_is_dropped_under_a_flood() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=3, per_second=1),
                     overall=Pace(burst=5, per_second=30))
    keys = [f"chat{i % 40}" for i in range(400)]
    sent = await send_all(time, pacer, keys)
    assert len(sent) == 400
    # 400 sends at 30 a second after a burst of 5: about 13 s, no less.
    assert sent[-1][1] == pytest.approx((400 - 5) / 30, abs=1.0)
    # Never more than the overall limit in any second.
    times = sorted(at for _, at in sent)
    assert all(b - a >= 1.0 for a, b in zip(times, times[35:], strict=False))


async def test_full_idle_buckets_are_forgotten() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=3, per_second=1))
    for i in range(100):
        async with pacer.turn(f"chat{i}"):
            pass
    assert pacer.tracked_keys() == 100
    time.now = 2.0  # not yet full again: kept
    async with pacer.turn("other"):
        pass
    assert pacer.tracked_keys() == 101
    time.now = 3.5  # every one full again and idle
    async with pacer.turn("last"):
        pass
    assert pacer.tracked_keys() == 1


async def test_a_waiting_key_is_kept_while_it_waits() -> None:
    time = VirtualTime()
    pacer = pacer_on(time, per_key=Pace(burst=1, per_second=1))
    inside = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with pacer.turn("held"):
            inside.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await inside.wait()
    time.now = 10.0  # long past a refill, but the key is in use
    async with pacer.turn("other"):
        pass
    assert pacer.tracked_keys() == 2
    release.set()
    await holder


def test_a_pace_is_shared_between_processes() -> None:
    assert Pace(burst=6, per_second=30).share(3) == Pace(burst=2, per_second=10)
    assert Pace(burst=3, per_second=1).share(5) == Pace(burst=1.0, per_second=0.2)
    assert Pace(burst=3, per_second=1).share(1) == Pace(burst=3, per_second=1)
    with pytest.raises(ValueError):
        Pace(burst=0, per_second=1)
