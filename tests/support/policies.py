"""Small dialog policies for tests that are about channels, not dialogs."""

from __future__ import annotations

import asyncio

from bot.core.model import Button, Outbound
from bot.core.policy import TurnContext

MENU_BUTTONS = (
    Button("Order status", "order_status"),
    Button("Talk to a person", "human"),
)


class EchoMenuPolicy:
    """A minimal policy: a menu on greetings and button presses, else an echo."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        inbound = turn.inbound
        words = inbound.text.strip().lower()
        if inbound.payload is not None:
            return [Outbound(text=f"You chose: {inbound.payload}", buttons=MENU_BUTTONS)]
        if words in {"hi", "hello", "hey", "menu", "/start", "start"}:
            return [Outbound(text="Hi! What would you like to do?", buttons=MENU_BUTTONS)]
        return [Outbound(text=f"You said: {inbound.text}")]


class EchoButtonsPolicy:
    """Echoes the text (or the pressed button's payload) and offers two
    buttons: replies that do not depend on the shipped dialogs' wording."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        inbound = turn.inbound
        said = f"payload {inbound.payload}" if inbound.payload is not None else inbound.text
        return [Outbound(text=f"echo: {said}", buttons=(Button("One", "p1"), Button("Two", "p2")))]


class RecordingEchoPolicy:
    """Echoes every message and remembers each text it was asked about; while
    `release` is an event, each turn waits for it (a slow turn)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.release: asyncio.Event | None = None

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        self.seen.append(turn.inbound.text)
        if self.release is not None:
            await self.release.wait()
        return [Outbound(text=f"Echo: {turn.inbound.text}")]
