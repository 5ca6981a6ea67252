""""Forget me" while a person holds the conversation: only an explicit yes
to the open question erases; any other message drops the question (the
customer is told nothing was erased, and the message still reaches the
agents), so a "yes" written later for the agent erases nothing."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.bus import LocalBus
from bot.core.conversation import ConversationState
from bot.core.engine import Engine
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.policy import TurnContext
from context_store import MemoryContextStore
from context_store.agents_memory import MemoryAgentStore
from tests.support.engines import handoff_engine

CONFIRM = ("This erases your messages and everything we know about you, on every channel, "
           "and ends this conversation with our team. Are you sure?")
KEPT = "OK, nothing was erased. Our team is still with you."
DONE = "Done: everything we knew about you is erased, on every channel."


class AsksForAPerson:
    """A dialog policy that hands every conversation to a person at once."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        turn.handoff_reason = "customer asked for a person"
        return [Outbound(text="Sure.")]


class Ignore:
    async def send(self, address: Address, outbound: Outbound) -> None:
        pass


class HeldChat:
    """A web chat customer who is waiting for a person, and what the
    consoles are told."""

    def __init__(self) -> None:
        self.store = MemoryContextStore()
        self.agents, bus = MemoryAgentStore(), LocalBus()
        self.engine: Engine
        self.engine, _ = handoff_engine(self.store, AsksForAPerson(), {"web": Ignore()},
                                        agents=self.agents, bus=bus)
        self.events: list[dict[str, Any]] = []
        self.n = 0

        async def record(event: dict[str, Any]) -> None:
            self.events.append(event)

        bus.subscribe("agents", record)

    async def says(self, text: str, payload: str | None = None) -> list[str]:
        self.n += 1
        turn = await self.engine.process(Inbound(
            identity=ChannelIdentity("web", "u1"), address=Address("web", "u1"),
            message_id=str(self.n), text=text, payload=payload))
        return [reply.text for reply in turn.replies]

    async def customer(self) -> str:
        [entry] = await self.agents.queued()
        return entry.customer

    async def state(self) -> ConversationState | None:
        raw = await self.store.load_state(await self.customer())
        return ConversationState.from_json(raw) if raw is not None else None

    def told_agents(self, text: str) -> bool:
        return any(e["type"] == "message" and e["entry"]["text"] == text for e in self.events)


async def asked_to_erase() -> HeldChat:
    chat = HeldChat()
    await chat.says("I want a person")
    assert await chat.says("forget me") == [CONFIRM]
    return chat


@pytest.mark.parametrize("answer", [
    "ok", "OK!", "sure", "vale", "claro", "y", "j", "yep", "yes?", "yes, but first",
    "nein", "no", "cancel", "never mind", "where is my parcel?",
])
async def test_anything_but_a_yes_drops_the_question_and_reaches_the_agents(
    answer: str,
) -> None:
    chat = await asked_to_erase()
    assert await chat.says(answer) == [KEPT]
    assert chat.told_agents(answer)
    state = await chat.state()
    assert state is not None and state.handoff is not None
    assert not state.handoff.confirm_erase
    # A yes meant for the agent now is only a message to the agent.
    assert await chat.says("yes") == []
    assert chat.told_agents("yes") and await chat.state() is not None


@pytest.mark.parametrize("answer", [
    "yes", "Yes please", "yes, please!", "ja", "Ja bitte", "sí", "Si", "¡Sí, por favor!",
    "Yes, forget me", "Ja, vergiss mich", "Sí, olvídame",
])
async def test_a_plain_yes_or_the_yes_buttons_words_erase(answer: str) -> None:
    chat = await asked_to_erase()
    customer = await chat.customer()
    assert await chat.says(answer) == [DONE]
    assert await chat.store.load_state(customer) is None
    assert await chat.store.history(customer, 50) == []


async def test_the_buttons_answer_and_only_the_yes_buttons_payload_erases() -> None:
    chat = await asked_to_erase()
    assert await chat.says("No", payload="erase_no") == [KEPT]
    # A button of the bot's titled "yes" is no answer to this question.
    assert await chat.says("forget me") == [CONFIRM]
    assert await chat.says("yes", payload="human") == [KEPT]
    # The yes button of a question no longer open erases nothing.
    assert await chat.says("Yes, forget me", payload="erase_yes") == []
    assert await chat.state() is not None
    assert await chat.says("forget me") == [CONFIRM]
    assert await chat.says("Yes, forget me", payload="erase_yes") == [DONE]


async def test_asking_again_keeps_the_question_open() -> None:
    chat = await asked_to_erase()
    assert await chat.says("forget me") == [CONFIRM]
    assert await chat.says("yes") == [DONE]
