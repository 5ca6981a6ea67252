"""The handoff turn hook on the memory store: what triggers a handoff, the
bot's silence while a person holds the conversation, and what the customer
is told."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.assembly.app import Segue, create_segue
from bot.core.bus import LocalBus
from bot.core.engine import Engine, EngineOptions
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.policy import TurnContext
from bot.core.settings import Settings
from bot.handoff.desk import HandoffDesk
from bot.handoff.hook import HandoffPolicy
from bot.handoff.ports import AgentAccount
from bot.handoff.state import waiting_notice
from context_store import MemoryContextStore
from context_store.agents_memory import MemoryAgentStore
from tests.support.engines import handoff_engine


class Scripted:
    """Echoes, and asks for a person when told to (as a rasa-sdk action would)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        self.seen.append(turn.inbound.text)
        if turn.inbound.text.startswith("escalate"):
            turn.handoff_reason = "action action_escalate asked for a person"
        if turn.inbound.text.endswith("forget me"):
            turn.erase_customer = True
        return [Outbound(text=f"Echo: {turn.inbound.text}")]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    async def send(self, address: Address, outbound: Outbound) -> None:
        self.sent.append(outbound)


def message(text: str, n: int, payload: str | None = None, user: str = "u1") -> Inbound:
    return Inbound(identity=ChannelIdentity("web", user), address=Address("web", user),
                   message_id=str(n), text=text, payload=payload)


def engine_with(policy: object) -> tuple[Engine, HandoffDesk, MemoryAgentStore, LocalBus]:
    store = MemoryContextStore()
    agents, bus = MemoryAgentStore(), LocalBus()
    engine, desk = handoff_engine(store, policy, {"web": Recorder()},  # type: ignore[arg-type]
                                  agents=agents, bus=bus,
                                  engine_options=EngineOptions(lock_wait_seconds=0.5))
    return engine, desk, agents, bus


async def texts(engine: Engine, text: str, n: int, payload: str | None = None,
                user: str = "u1") -> list[str]:
    turn = await engine.process(message(text, n, payload, user))
    return [r.text for r in turn.replies]


def recorded(bus: LocalBus) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def record(event: dict[str, Any]) -> None:
        events.append(event)

    bus.subscribe("agents", record)
    return events


async def test_an_action_asking_for_a_person_queues_and_the_bot_falls_silent() -> None:
    policy = Scripted()
    engine, _, agents, bus = engine_with(policy)
    events: list[dict[str, object]] = []

    async def record(event: dict[str, object]) -> None:
        events.append(event)

    bus.subscribe("agents", record)
    assert await texts(engine, "escalate", 1) == [
        "Echo: escalate", waiting_notice(0, False, "Monday to Friday, 9:00-17:00")]
    [entry] = await agents.queued()
    assert events[0]["type"] == "queued" and events[0]["customer"] == entry.customer
    assert await texts(engine, "hello?", 2) == []
    assert await texts(engine, "anyone?", 3) == []
    assert policy.seen == ["escalate"]  # the policy never saw the messages after
    said = [e["entry"] for e in events[1:] if e["type"] == "message"]
    # The team's line that it waits, then the customer's messages, live to the consoles.
    assert [(e["sender"], e["text"]) for e in said] == [  # type: ignore[index]
        ("internal", "Waiting for a person: action action_escalate asked for a person"),
        ("customer", "hello?"), ("customer", "anyone?")]
    state = await engine.store.load_state(entry.customer)
    assert state is not None and '"status":"queued"' in state


async def test_slash_agent_asks_for_a_person_on_any_channel() -> None:
    engine, _, agents, _ = engine_with(Scripted())
    await agents.touch_agent("ann", "w1", 60)
    await agents.index_queued("someone-else", 1.0)
    replies = await texts(engine, "/agent", 1)
    assert replies == ["A person from our team will take over this conversation shortly.",
                       "1 person is waiting ahead of you."]
    assert len(await agents.queued()) == 2


async def test_link_commands_still_work_while_a_person_holds_the_chat() -> None:
    segue = await create_segue(Settings(webchat_secret="s" * 32), store=MemoryContextStore(),
                               policy=Scripted())
    engine = segue.engine
    await texts(engine, "escalate", 1)
    [code] = await texts(engine, "link", 2)
    assert code.startswith("Your link code is")
    assert await texts(engine, "still here", 3) == []


async def test_a_policy_that_is_not_wrapped_still_gets_queued() -> None:
    engine, _, agents, _ = engine_with(Scripted())
    assert isinstance(engine.policy, HandoffPolicy)
    engine.policy = Scripted()  # replaced after assembly, as some rigs do
    await texts(engine, "escalate", 1)
    assert len(await agents.queued()) == 1
    assert await texts(engine, "hello?", 2) == []


async def test_a_merge_in_a_turn_moves_the_handoff_once() -> None:
    segue = await create_segue(Settings(webchat_secret="s" * 32), store=MemoryContextStore(),
                               policy=Scripted())
    assert segue.handoff is not None
    engine, agents = segue.engine, segue.handoff.agents
    events = recorded(segue.handoff.bus)
    await texts(engine, "escalate", 1, user="phone")
    [queued] = await agents.queued()
    [code_text] = await texts(engine, "link", 2, user="laptop")
    code = re.search(r"\b([2-9A-Z]{4}-[2-9A-Z]{4})\b", code_text)
    assert code is not None
    await texts(engine, f"link {code.group(1)}", 3, user="phone")
    await texts(engine, "yes", 4, user="phone")
    laptop = await engine.customer_of(ChannelIdentity("web", "laptop"))
    assert await engine.customer_of(ChannelIdentity("web", "phone")) == laptop
    assert [(e["customer"], e["to"]) for e in events if e["type"] == "moved"] == [
        (queued.customer, laptop)]
    assert [e.customer for e in await agents.queued()] == [laptop]
    assert await texts(engine, "hello?", 5, user="laptop") == []  # still with a person


async def test_an_erased_customer_leaves_the_queue() -> None:
    engine, _, agents, bus = engine_with(Scripted())
    events = recorded(bus)
    replies = await texts(engine, "escalate, then forget me", 1)
    assert replies[0] == "Echo: escalate, then forget me"
    assert await agents.queued() == [] and await agents.claimed() == {}
    assert [e["type"] for e in events] == ["erased"]


async def test_customers_gone_from_the_store_are_dropped_from_the_lists() -> None:
    engine, desk, agents, _ = engine_with(Scripted())
    root = AgentAccount("root", "Root", "admin", "unused-hash")
    await texts(engine, "escalate", 1, user="u1")
    await texts(engine, "escalate", 2, user="u2")
    waiting, held = (e.customer for e in await agents.queued())
    await desk.claim(root, held)
    await texts(engine, "escalate", 3, user="u3")
    stays = await engine.customer_of(ChannelIdentity("web", "u3"))
    for gone in (waiting, held):  # erased, or expired by the retention setting
        await engine.store.erase(gone)
    assert [q["customer"] for q in await desk.queue()] == [stays]
    assert await desk.claimed(root) == []
    assert [e.customer for e in await agents.queued()] == [stays]
    assert await agents.claimed() == {}


@pytest.fixture
async def demo() -> AsyncIterator[Segue]:
    yield await create_segue(Settings(webchat_secret="s" * 32, agents="ann:pw-1"),
                             store=MemoryContextStore())


async def test_two_misunderstandings_in_a_row_hand_off(demo: Segue) -> None:
    assert demo.handoff is not None
    [first] = await texts(demo.engine, "blorp flux", 1)
    assert first.startswith("Sorry, I didn't get that.")
    replies = await texts(demo.engine, "zzkx qqv", 2)
    assert replies[0].startswith("I'm having trouble understanding")
    assert "No agent is online" in replies[1]
    assert len(await demo.handoff.agents.queued()) == 1


async def test_the_talk_to_a_person_button_hands_off(demo: Segue) -> None:
    assert demo.handoff is not None
    replies = await texts(demo.engine, "Talk to a person", 1, payload="human")
    assert replies[0].startswith("Sure, a person from our team")
    assert len(await demo.handoff.agents.queued()) == 1


async def test_segue_agents_creates_console_accounts_at_start(demo: Segue) -> None:
    assert demo.handoff is not None
    login = await demo.handoff.auth.login("ann", "pw-1", address="127.0.0.1")
    assert (await demo.handoff.auth.authenticate(login.token)).role == "agent"


def test_waiting_notices() -> None:
    assert waiting_notice(0, True, "x") == "You're next in line."
    assert waiting_notice(1, True, "x") == "1 person is waiting ahead of you."
    assert waiting_notice(3, True, "x") == "3 people are waiting ahead of you."
    assert "available 9-5" in waiting_notice(3, False, "9-5")



async def test_forget_me_works_while_a_person_holds_the_chat() -> None:
    engine, _, agents, bus = engine_with(Scripted())
    events = recorded(bus)
    await texts(engine, "escalate", 1)
    [entry] = await agents.queued()
    asked = await engine.process(message("forget me", 2))
    assert [b.payload for b in asked.replies[0].buttons] == ["erase_yes", "erase_no"]
    # Anything but a yes drops the question (and still goes to the agents),
    # so a later yes erases nothing.
    assert await texts(engine, "hm, let me think", 3) == [
        "OK, nothing was erased. Our team is still with you."]
    assert await texts(engine, "yes", 4) == []
    assert await engine.store.history(entry.customer, 50)  # nothing was erased
    await texts(engine, "forget me", 5)
    done = await texts(engine, "Yes, forget me", 6, payload="erase_yes")
    assert done == ["Done: everything we knew about you is erased, on every channel."]
    assert await engine.store.history(entry.customer, 50) == []
    assert await agents.queued() == []
    assert any(e["type"] == "message" and e["entry"]["text"] == "forget me" for e in events)
