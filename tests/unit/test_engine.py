"""The turn pipeline, on the memory store and, where a test takes `store`,
on both stores; and its replies' way out through the outbox."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.engine import Engine, EngineOptions
from bot.core.errors import LockTimeout, StoreError, StoreUnavailable
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.outbox import OutboxSweeper
from bot.core.policy import TurnContext
from bot.core.ports import ContextStore, LoadResult
from context_store import MemoryContextStore
from tests.support.policies import EchoMenuPolicy


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[Address, Outbound]] = []

    async def send(self, address: Address, outbound: Outbound) -> None:
        self.sent.append((address, outbound))


def inbound(text: str, msg_id: str, user: str = "u1") -> Inbound:
    return Inbound(
        identity=ChannelIdentity("web", user), address=Address("web", user),
        message_id=msg_id, text=text,
    )


def make_engine(policy: object | None = None) -> tuple[Engine, MemoryContextStore, RecordingSender]:
    store = MemoryContextStore()
    sender = RecordingSender()
    engine = Engine(store=store, policy=policy or EchoMenuPolicy(),  # type: ignore[arg-type]
                    senders={"web": sender}, options=EngineOptions(lock_wait_seconds=0.5))
    return engine, store, sender


async def test_a_turn_records_the_message_and_its_reply_and_delivers_it() -> None:
    engine, store, sender = make_engine()
    turn = await engine.handle(inbound("hello", "1"))
    assert not turn.duplicate
    assert [o.text for _, o in sender.sent] == ["Hi! What would you like to do?"]
    assert sender.sent[0][1].reply_to == "1"
    history = await store.history(turn.customer_id, 10)
    assert [(e.sender, e.text) for e in history] == [
        ("customer", "hello"), ("bot", "Hi! What would you like to do?"),
    ]


async def test_a_redelivered_message_is_processed_and_answered_once() -> None:
    engine, store, sender = make_engine()
    first = await engine.handle(inbound("hello", "1"))
    again = await engine.handle(inbound("hello", "1"))
    assert again.duplicate and again.replies == ()
    assert len(sender.sent) == 1
    assert len(await store.history(first.customer_id, 10)) == 2


async def test_the_same_id_from_another_sender_is_a_new_message() -> None:
    engine, _, sender = make_engine()
    await engine.handle(inbound("hello", "1", user="u1"))
    await engine.handle(inbound("hello", "1", user="u2"))
    assert len(sender.sent) == 2


async def test_state_is_kept_between_turns() -> None:
    class Counting:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            turn.state.dialog["n"] = turn.state.dialog.get("n", 0) + 1
            return [Outbound(text=str(turn.state.dialog["n"]))]

    engine, _, sender = make_engine(Counting())
    for i in range(3):
        await engine.handle(inbound("x", str(i)))
    assert [o.text for _, o in sender.sent] == ["1", "2", "3"]


async def test_a_failing_policy_gets_an_apology_and_the_lock_is_free() -> None:
    class Broken:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            raise RuntimeError("bug")

    engine, store, sender = make_engine(Broken())
    turn = await engine.handle(inbound("x", "1"))
    assert "Sorry" in sender.sent[0][1].text
    assert (await store.lock_and_load(turn.customer_id, token="t", ttl_seconds=1,
                                      message_key=None)).locked


async def test_erase_removes_the_customer_after_the_reply_is_delivered() -> None:
    class Forget:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            turn.erase_customer = True
            return [Outbound(text="Done, your data is erased.")]

    engine, store, sender = make_engine(Forget())
    turn = await engine.handle(inbound("forget me", "1"))
    assert sender.sent[0][1].text == "Done, your data is erased."
    assert await store.history(turn.customer_id, 10) == []
    assert await store.resolve_customer(ChannelIdentity("web", "u1"), "new") == "new"


async def test_turns_of_one_customer_run_one_at_a_time_in_arrival_order() -> None:
    running = 0
    order: list[str] = []

    class Slow:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            nonlocal running
            running += 1
            assert running == 1, "two turns of one customer overlapped"
            await asyncio.sleep(0)  # yield to the other tasks mid-turn
            order.append(turn.inbound.text)
            running -= 1
            return []

    engine, _, _ = make_engine(Slow())
    await asyncio.gather(*(engine.process(inbound(f"m{i}", str(i))) for i in range(20)))
    assert order == [f"m{i}" for i in range(20)]


async def test_a_lock_held_elsewhere_times_out_without_writing() -> None:
    engine, store, _ = make_engine()
    customer = await store.resolve_customer(ChannelIdentity("web", "u1"), "c1")
    await store.lock_and_load(customer, token="other-worker", ttl_seconds=30, message_key=None)
    with pytest.raises(LockTimeout):
        await engine.process(inbound("x", "1"))
    assert await store.history(customer, 10) == []


async def test_store_errors_propagate_so_the_connector_can_refuse() -> None:
    engine, store, _ = make_engine()

    async def down(*args: object, **kwargs: object) -> str:
        raise StoreUnavailable("down")

    store.resolve_customer = down  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        await engine.process(inbound("x", "1"))


async def test_a_worker_with_a_stale_cached_customer_resolves_again() -> None:
    class Forget:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            turn.erase_customer = turn.inbound.text == "forget me"
            return [Outbound(text="ok")]

    store = MemoryContextStore()
    worker_a = Engine(store=store, policy=Forget(), senders={"web": RecordingSender()})
    worker_b = Engine(store=store, policy=Forget(), senders={"web": RecordingSender()})
    before = await worker_a.process(inbound("hi", "1"))
    await worker_b.process(inbound("forget me", "2"))
    # worker_a still caches the erased id; the store tells it the id moved.
    after = await worker_a.process(inbound("hello again", "3"))
    assert after.customer_id != before.customer_id
    assert [e.text for e in await store.history(after.customer_id, 10)] == ["hello again", "ok"]



class Clock:
    """A store clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_slow_turn_keeps_its_lock_and_turns_stay_in_order() -> None:
    release, slow_started = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    class SlowFirst:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            if turn.inbound.text == "slow":
                slow_started.set()  # deciding: it holds the customer's lock
                await release.wait()
            order.append(turn.inbound.text)
            return [Outbound(text="ok")]

    # Lock lifetimes run on the store's clock, which moves only below, so a
    # slow scheduler cannot let a lock lapse; renewals come every 0.1 s.
    clock = Clock()
    store = MemoryContextStore(clock=clock)
    renewed_at: list[float] = []
    refused_at: list[float] = []
    extend_lock, lock_and_load = store.extend_lock, store.lock_and_load

    async def counted_extend(customer_id: str, *, token: str, ttl_seconds: float) -> bool:
        extended = await extend_lock(customer_id, token=token, ttl_seconds=ttl_seconds)
        if extended:
            renewed_at.append(clock.now)
        return extended

    async def counted_load(customer_id: str, **kwargs: object) -> LoadResult:
        loaded = await lock_and_load(customer_id, **kwargs)  # type: ignore[arg-type]
        if not loaded.locked:
            refused_at.append(clock.now)
        return loaded

    store.extend_lock = counted_extend  # type: ignore[method-assign]
    store.lock_and_load = counted_load  # type: ignore[method-assign]

    async def until(seen: list[float], at: float) -> None:
        """Until `seen` holds a time from `at` on, or a turn got through."""
        async with asyncio.timeout(10):
            while not order and not any(t >= at for t in seen):
                await asyncio.sleep(0.01)

    options = EngineOptions(lock_ttl_seconds=0.3, lock_wait_seconds=30)
    worker_a = Engine(store=store, policy=SlowFirst(), senders={"web": RecordingSender()},
                      options=options)
    worker_b = Engine(store=store, policy=SlowFirst(), senders={"web": RecordingSender()},
                      options=options)
    slow = asyncio.create_task(worker_a.process(inbound("slow", "1")))
    await slow_started.wait()
    fast = asyncio.create_task(worker_b.process(inbound("fast", "2")))
    taken = clock.now  # the lock expires at taken + 0.3 unless renewed
    clock.now = taken + 0.2
    await until(renewed_at, taken + 0.2)  # now it expires at taken + 0.5 at the earliest
    assert order == []
    clock.now = taken + 0.4  # past the first lifetime: renewal is what is under test
    await until(refused_at, taken + 0.4)  # the other worker tried, and was refused
    assert order == []
    release.set()
    await asyncio.gather(slow, fast)
    assert order == ["slow", "fast"]


async def test_a_turn_that_never_decides_is_given_up_with_an_apology() -> None:
    class Hung:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            await asyncio.Event().wait()
            return []

    store = MemoryContextStore()
    sender = RecordingSender()
    engine = Engine(store=store, policy=Hung(), senders={"web": sender},
                    options=EngineOptions(turn_timeout_seconds=0.1))
    turn = await engine.handle(inbound("hello?", "1"))
    assert "Sorry" in sender.sent[0][1].text
    assert [e.text for e in await store.history(turn.customer_id, 5)][0] == "hello?"


async def test_a_cancelled_turn_releases_the_customer_lock(store: ContextStore) -> None:
    deciding = asyncio.Event()

    class HangsOnce:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            if turn.inbound.text == "hang":
                deciding.set()
                await asyncio.Event().wait()
            return [Outbound(text="ok")]

    # No waiting for a lock: the next turn must find it free at once.
    engine = Engine(store=store, policy=HangsOnce(), senders={"web": RecordingSender()},
                    options=EngineOptions(lock_ttl_seconds=30, lock_wait_seconds=0))
    hung = asyncio.create_task(engine.process(inbound("hang", "1")))
    await deciding.wait()  # inside the turn, holding the customer's lock
    hung.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hung
    turn = await engine.process(inbound("next", "2"))
    assert not turn.duplicate and [r.text for r in turn.replies] == ["ok"]


async def test_a_turn_whose_save_fails_releases_the_lock_for_the_redelivery(
    store: ContextStore,
) -> None:
    save_and_unlock = store.save_and_unlock

    async def refused_once(customer_id: str, **kwargs: object) -> bool:
        store.save_and_unlock = save_and_unlock  # type: ignore[method-assign]
        raise StoreError("the write was refused")

    store.save_and_unlock = refused_once  # type: ignore[method-assign]
    engine = Engine(store=store, policy=EchoMenuPolicy(), senders={"web": RecordingSender()},
                    options=EngineOptions(lock_ttl_seconds=30, lock_wait_seconds=0))
    with pytest.raises(StoreError):
        await engine.process(inbound("hello", "1"))
    # The connector has the message sent again: processed at once, and only now kept.
    turn = await engine.process(inbound("hello", "1"))
    assert not turn.duplicate and turn.replies[0].text == "Hi! What would you like to do?"
    assert [e.text for e in await store.history(turn.customer_id, 10)] == [
        "hello", "Hi! What would you like to do?"]


async def test_the_memory_store_forgets_expired_tokens_and_counters() -> None:
    store = MemoryContextStore()
    await store.put_token("old", "v", 0)  # expired as soon as it is made
    await store.incr("old-counter", 0)
    store._last_sweep -= 120  # as if the last sweep were two minutes ago
    await store.put_token("new", "v", 60)
    assert set(store._tokens) == {"new"} and store._counters == {}


# The outbox: replies saved with the turn, delivered once, in order, whoever dies.


class Replies:
    """Answers "<text>" with "<text> 1", "<text> 2", ... as many as its number."""

    def __init__(self, count: int = 2) -> None:
        self.count = count

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return [Outbound(text=f"{turn.inbound.text} {n}") for n in range(1, self.count + 1)]


class WorkerDied(BaseException):
    """A worker killed in the middle of a send: nothing after it runs."""


class DyingSender(RecordingSender):
    """Sends until its `dies_at`-th send, where the worker dies."""

    def __init__(self, dies_at: int) -> None:
        super().__init__()
        self.dies_at = dies_at

    async def send(self, address: Address, outbound: Outbound) -> None:
        if len(self.sent) + 1 == self.dies_at:
            raise WorkerDied()
        await super().send(address, outbound)


# The claim a worker takes on its replies lasts this long: a dead worker's
# replies are the others' after it.
CLAIM = 0.3


def worker(store: ContextStore, sender: RecordingSender, policy: object | None = None) -> Engine:
    return Engine(store=store, policy=policy or Replies(),  # type: ignore[arg-type]
                  senders={"web": sender},
                  options=EngineOptions(lock_ttl_seconds=CLAIM, lock_wait_seconds=5))


def texts(sender: RecordingSender) -> list[str]:
    return [outbound.text for _, outbound in sender.sent]


async def swept(sweeper: OutboxSweeper, sender: RecordingSender, count: int) -> None:
    """Sweep until `sender` has sent `count` replies (once the dead worker's
    claim has run out: time passing, so polled)."""
    async with asyncio.timeout(5):
        while len(sender.sent) < count:
            await sweeper.sweep()
            await asyncio.sleep(0.02)


async def test_replies_of_a_worker_that_died_after_the_save_are_sent_once_by_another(
    store: ContextStore,
) -> None:
    dead, alive = RecordingSender(), RecordingSender()
    worker_a, worker_b = worker(store, dead), worker(store, alive)
    turn = await worker_a.process(inbound("hi", "1"))  # saved; the worker dies before sending
    # The platform sends the message again, to the other worker: a duplicate.
    assert (await worker_b.handle(inbound("hi", "1"))).duplicate
    assert alive.sent == []
    sweeper = OutboxSweeper(worker_b.outbox)
    await swept(sweeper, alive, 2)
    assert texts(alive) == ["hi 1", "hi 2"] and dead.sent == []
    assert all(address == Address("web", "u1") for address, _ in alive.sent)
    # Delivered means gone from the outbox and the index: nothing is sent again.
    await asyncio.sleep(CLAIM)
    assert await sweeper.sweep() == 0 and texts(alive) == ["hi 1", "hi 2"]
    assert await store.outbox_due(10) == []
    claim = await store.outbox_claim(turn.customer_id, token="x", ttl_seconds=1)
    assert claim.status == "idle"


async def test_a_reply_is_marked_delivered_right_after_its_send(store: ContextStore) -> None:
    dying, alive = DyingSender(dies_at=2), RecordingSender()
    worker_a, worker_b = worker(store, dying, Replies(3)), worker(store, alive, Replies(3))
    with pytest.raises(WorkerDied):
        await worker_a.handle(inbound("hi", "1"))
    assert texts(dying) == ["hi 1"]
    await swept(OutboxSweeper(worker_b.outbox), alive, 2)
    # The first was sent and marked: only the rest are left for the others.
    assert texts(alive) == ["hi 2", "hi 3"]


async def test_a_turns_replies_go_out_after_those_a_dead_worker_left(
    store: ContextStore,
) -> None:
    dead, alive = RecordingSender(), RecordingSender()
    worker_a, worker_b = worker(store, dead), worker(store, alive)
    await worker_a.process(inbound("first", "1"))  # saved; the worker dies before sending
    await worker_b.handle(inbound("second", "2"))
    # Worker B waited for A's claim to run out, then sent everything in order.
    assert texts(alive) == ["first 1", "first 2", "second 1", "second 2"]


async def test_a_slow_send_keeps_the_replies_from_the_sweepers(store: ContextStore) -> None:
    release, sending = asyncio.Event(), asyncio.Event()

    class Slow(RecordingSender):
        async def send(self, address: Address, outbound: Outbound) -> None:
            sending.set()
            await release.wait()
            await super().send(address, outbound)

    slow, alive = Slow(), RecordingSender()
    worker_a, worker_b = worker(store, slow, Replies(1)), worker(store, alive, Replies(1))
    delivering = asyncio.create_task(worker_a.handle(inbound("hi", "1")))
    await sending.wait()
    sweeper = OutboxSweeper(worker_b.outbox)
    deadline = asyncio.get_running_loop().time() + 3 * CLAIM  # the claim's time, thrice
    while asyncio.get_running_loop().time() < deadline:
        await sweeper.sweep()
        await asyncio.sleep(0.02)
    assert alive.sent == []
    release.set()
    await delivering
    assert texts(slow) == ["hi 1"]
