"""The `decide` step of a turn: what the bot answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bot.core.catalog import text
from bot.core.conversation import ConversationState
from bot.core.model import HistoryEntry, Inbound, Outbound

# What a customer reads when a person is asked for, whoever asked: a flow, an
# action, or the customer's own `/agent`. In English: the catalog's
# "handoff_asked" has it in the customer's language.
HANDOFF_ASKED = text("handoff_asked", None)


@dataclass(slots=True)
class TurnContext:
    """What a policy sees of one turn. `state` may be changed in place; the
    engine saves it with the turn.

    A policy asks for effects beyond its replies by setting flags, which the
    engine carries out after the turn is saved: `erase_customer` removes all
    of the customer's data (replies are still delivered); `handoff_reason`
    queues the conversation for a person.
    """

    customer_id: str
    inbound: Inbound
    state: ConversationState
    erase_customer: bool = False
    handoff_reason: str | None = None
    # Set by the linking step once this customer was joined into another.
    joined_into: str | None = None
    # The team's lines this turn adds to the timeline after its replies
    # (a handoff queued): kept in the history, never sent.
    internal: list[HistoryEntry] = field(default_factory=list)


class Policy(Protocol):
    """Chooses the bot's replies to one inbound message."""

    async def decide(self, context: TurnContext) -> list[Outbound]: ...


@runtime_checkable
class FlowStarter(Protocol):
    """A policy that can start one of its flows without a message from the
    customer (the business asks first, through the public API)."""

    async def start_flow(self, context: TurnContext, flow: str,
                         slots: Mapping[str, Any]) -> list[Outbound]:
        """The flow's first replies, `slots` filled in first; raises
        `BadInput` (`unknown_flow`, `bad_slots`) and changes nothing when
        the flow or a slot is not one it may start so."""
        ...

    def protected_payloads(self) -> frozenset[str]:
        """Button payloads the business may not put in a message: they would
        start what only the customer may ask for (a destructive flow)."""
        ...
