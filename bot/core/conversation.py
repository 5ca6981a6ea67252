"""A customer's conversation state: small, bounded, one JSON value in the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from bot.core.model import Address


@dataclass(slots=True)
class ConversationState:
    """What the engine needs between turns; never the history itself.

    `dialog` belongs to the dialog policy (active flow, step, slots); the engine
    only stores it, so it moves with the customer between channels.
    """

    last_address: Address | None = None
    dialog: dict[str, Any] = field(default_factory=dict)
    turns: int = 0
    # Owned by the handoff step: queued / claimed, by whom, since when.
    handoff: dict[str, Any] | None = None
    # Owned by the linking step: a link code waiting for a yes/no.
    pending_link: dict[str, Any] | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"turns": self.turns, "dialog": self.dialog}
        if self.last_address is not None:
            data["last_address"] = self.last_address.to_json()
        if self.handoff is not None:
            data["handoff"] = self.handoff
        if self.pending_link is not None:
            data["pending_link"] = self.pending_link
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, raw: str | None) -> ConversationState:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        address = data.get("last_address")
        return cls(
            last_address=Address.from_json(address) if address else None,
            dialog=data.get("dialog", {}),
            turns=data.get("turns", 0),
            handoff=data.get("handoff"),
            pending_link=data.get("pending_link"),
        )
