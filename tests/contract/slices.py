"""The slices of the store protocols, and a store seen through only some of them."""

from __future__ import annotations

from typing import Any, Protocol

from bot.core.events_queue import EventQueueStore
from bot.core.ports import (
    ConversationReader,
    CounterStore,
    IdentityStore,
    InboxStore,
    ParkingStore,
    StoreHealth,
    TokenStore,
    TurnStore,
    WebPresenceStore,
)
from bot.handoff.ports import (
    AccountStore,
    AgentPresenceStore,
    AgentSessionStore,
    AssignmentStore,
    CannedReplyStore,
    HandoffQueueStore,
    HandoffRecordStore,
    LoginAttemptStore,
)

# What `ContextStore` is made of.
CONTEXT_SLICES: tuple[type, ...] = (
    StoreHealth, TurnStore, ConversationReader, IdentityStore, TokenStore, CounterStore,
    ParkingStore, InboxStore,
)
# Offered by every context store beside `ContextStore`, not in it.
BESIDE_SLICES: tuple[type, ...] = (EventQueueStore,)
# What `AgentStore` is made of.
AGENT_SLICES: tuple[type, ...] = (
    AccountStore, AgentSessionStore, LoginAttemptStore, HandoffQueueStore, AgentPresenceStore,
    WebPresenceStore, CannedReplyStore, HandoffRecordStore, AssignmentStore,
)


def methods(protocol: type) -> set[str]:
    """The methods a protocol asks for, its bases' included."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass is Protocol or not getattr(klass, "_is_protocol", False):
            continue
        names |= {name for name, value in vars(klass).items()
                  if callable(value) and not name.startswith("_")}
    return names


class Narrowed:
    """`target` seen through some slices: every other method is missing, so
    a caller that uses one fails with AttributeError."""

    def __init__(self, target: object, *slices: type) -> None:
        self._target = target
        self._allowed = set().union(*(methods(s) for s in slices))

    def __getattr__(self, name: str) -> Any:
        if name in self._allowed:
            return getattr(self._target, name)
        raise AttributeError(f"{name} is in none of the slices asked for")


def narrowed(target: object, *slices: type) -> Any:
    """`Narrowed(target, *slices)`, typed to stand in for whatever a caller asks."""
    return Narrowed(target, *slices)
