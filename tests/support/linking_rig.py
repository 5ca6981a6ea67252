"""Linking on the engine and the memory store: a policy with a question to
pick up elsewhere, a recording sender, and people who write on a channel."""

from __future__ import annotations

import re

from bot.core.engine import Engine
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.policy import TurnContext
from bot.core.ports import ContextStore
from bot.linking.service import LinkOptions
from context_store import MemoryContextStore
from tests.support.engines import linking_engine


class OrderPolicy:
    """Asks for an order number, then answers: enough to see a question
    asked on one channel answered on another."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        if turn.state.dialog.get("asking"):
            turn.state.dialog.clear()
            return [Outbound(text=f"Order {turn.inbound.text} has shipped.")]
        if turn.inbound.text == "where is my order":
            turn.state.dialog["asking"] = True
            return [Outbound(text="What's the order number?")]
        return [Outbound(text="ok")]


class Sent:
    def __init__(self) -> None:
        self.items: list[tuple[Address, Outbound]] = []

    async def send(self, address: Address, outbound: Outbound) -> None:
        self.items.append((address, outbound))

    def texts(self, channel: str) -> list[str]:
        return [o.text for a, o in self.items if a.channel == channel]


def make(store: ContextStore | None = None, **options: object) -> tuple[Engine, Sent]:
    store = store or MemoryContextStore()
    sent = Sent()
    engine, _ = linking_engine(
        store, OrderPolicy(), {c: sent for c in ("web", "telegram", "slack")},
        LinkOptions(secret="s3cret", telegram_bot_username="segue_bot",
                    public_url="https://chat.example", **options))  # type: ignore[arg-type]
    return engine, sent


class Person:
    """One channel identity talking to the engine."""

    def __init__(self, engine: Engine, channel: str, user: str, name: str | None = None) -> None:
        self.engine, self.channel, self.user, self.name = engine, channel, user, name
        self.n = 0

    async def say(self, text: str, payload: str | None = None) -> list[Outbound]:
        self.n += 1
        turn = await self.engine.handle(Inbound(
            identity=ChannelIdentity(self.channel, self.user),
            address=Address(self.channel, self.user), message_id=f"{self.user}-{self.n}",
            text=text, payload=payload, display_name=self.name,
        ))
        return list(turn.replies)

    async def customer(self) -> str:
        return await self.engine.customer_of(ChannelIdentity(self.channel, self.user))


def code_in(replies: list[Outbound]) -> str:
    match = re.search(r"\b([2-9A-Z]{4}-[2-9A-Z]{4})\b", replies[0].text)
    assert match, replies[0].text
    return match.group(1)
