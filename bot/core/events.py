"""Events out: what happened to a customer's conversation, for the business's
own systems (`SEGUE_EVENTS_URL`).

Every part that changes a conversation tells an `EventSink`; the sink only
queues the event (durably, per customer, in order) and never raises, so a
failing endpoint never slows a conversation. Sending is the dispatcher's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

# The event types (docs/api.md, "Events").
CONVERSATION_STARTED = "conversation.started"
MESSAGE_CREATED = "message.created"
HANDOFF_QUEUED = "handoff.queued"
HANDOFF_CLAIMED = "handoff.claimed"
HANDOFF_CLOSED = "handoff.closed"
HANDOFF_RATED = "handoff.rated"
CUSTOMER_LINKED = "customer.linked"
CUSTOMER_ERASED = "customer.erased"


class EventSink(Protocol):
    """Where a part of Segue reports an event about one customer."""

    async def emit(self, customer_id: str, type: str, data: Mapping[str, Any]) -> None:
        """Queue one event; never raises (a store failure is logged)."""
        ...


class NoEvents:
    """The sink when no events URL is configured: nothing is kept."""

    async def emit(self, customer_id: str, type: str, data: Mapping[str, Any]) -> None:
        return None


NO_EVENTS: EventSink = NoEvents()
