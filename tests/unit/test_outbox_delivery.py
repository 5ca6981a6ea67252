"""Agents' messages and notices leave through the same outbox as the bot's
replies: saved with the desk's change, sent once, in order with the bot's
replies, whichever worker dies. On both stores."""

from __future__ import annotations

import asyncio

import pytest

from bot.core import turn_log
from bot.core.engine import Engine, EngineOptions
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.outbox import OutboxSweeper
from bot.core.policy import TurnContext
from bot.core.ports import ContextStore
from bot.handoff.desk import HandoffDesk
from bot.handoff.ports import AgentAccount
from tests.support.engines import handoff_engine

ROOT = AgentAccount(username="root", display_name="Root", password_hash="x", role="admin")
CLAIM = 0.3  # seconds a worker's claim on what it saved lasts


class Replies:
    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return [Outbound(text=f"{turn.inbound.text} {n}") for n in (1, 2)]


class WorkerDied(BaseException):
    """A worker killed in the middle of a send."""


class Sender:
    def __init__(self, *, dies: bool = False) -> None:
        self.sent: list[str] = []
        self.dies = dies

    async def send(self, address: Address, outbound: Outbound) -> None:
        if self.dies:
            raise WorkerDied()
        self.sent.append(outbound.text)


def worker(store: ContextStore, sender: Sender) -> tuple[Engine, HandoffDesk]:
    return handoff_engine(store, Replies(), {"web": sender},
                          engine_options=EngineOptions(lock_ttl_seconds=CLAIM,
                                                       lock_wait_seconds=5))


def message(text: str, message_id: str) -> Inbound:
    return Inbound(ChannelIdentity("web", "u1"), Address("web", "s1"), message_id, text)


async def swept(sweeper: OutboxSweeper, sender: Sender, count: int) -> None:
    """Sweep until `sender` sent `count` messages (a dead worker's claim runs
    out with time: polled)."""
    async with asyncio.timeout(5):
        while len(sender.sent) < count:
            await sweeper.sweep()
            await asyncio.sleep(0.02)


async def test_an_agents_message_saved_by_a_worker_that_died_is_sent_once_by_another(
    store: ContextStore,
) -> None:
    dying, alive = Sender(dies=True), Sender()
    engine_b, desk_b = worker(store, alive)
    _, desk_a = worker(store, dying)
    turn = await engine_b.handle(message("hi", "1"))
    with pytest.raises(WorkerDied):
        await desk_a.reply(ROOT, turn.customer_id, "A person here")
    await swept(OutboxSweeper(desk_b.outbox), alive, 3)
    assert alive.sent == ["hi 1", "hi 2", "A person here"]
    await asyncio.sleep(CLAIM)  # a claim's time: nothing is left to send again
    assert await OutboxSweeper(desk_b.outbox).sweep() == 0
    assert alive.sent == ["hi 1", "hi 2", "A person here"]


async def test_an_agents_message_goes_after_the_bot_replies_saved_before_it(
    store: ContextStore,
) -> None:
    dead, alive = Sender(), Sender()
    engine_a, _ = worker(store, dead)
    _, desk_b = worker(store, alive)
    turn = await engine_a.process(message("hi", "1"))  # saved; worker A dies before sending
    answer = await desk_b.reply(ROOT, turn.customer_id, "A person here")
    # B waited for A's claim to run out and sent A's replies first.
    assert alive.sent == ["hi 1", "hi 2", "A person here"] and dead.sent == []
    assert (answer["delivered"], answer["channel"]) == (True, "web")


class IdsSeen(Sender):
    """Notes the turn ids in hand at each send: what its log lines carry."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[turn_log.TurnIds | None] = []

    async def send(self, address: Address, outbound: Outbound) -> None:
        self.ids.append(turn_log.current())
        await super().send(address, outbound)


async def test_a_reply_sent_again_by_a_sweeper_is_logged_as_its_turns(
    store: ContextStore,
) -> None:
    dying, alive = Sender(dies=True), IdsSeen()
    engine_a, _ = worker(store, dying)
    _, desk_b = worker(store, alive)
    with turn_log.turn("T-7", channel="web"), pytest.raises(WorkerDied):
        await engine_a.handle(message("hi", "1"))
    assert turn_log.current() is None  # the sweeper's task knows nothing of that turn
    await swept(OutboxSweeper(desk_b.outbox), alive, 2)
    customer = await store.resolve_customer(ChannelIdentity("web", "u1"), "not-new")
    assert alive.ids == [turn_log.TurnIds("T-7", "web", customer)] * 2
