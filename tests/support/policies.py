"""Small dialog policies for tests that are about channels, not dialogs."""

from __future__ import annotations

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
