"""The agents' read-only side of the desk: the queue, the claims, one conversation."""

from __future__ import annotations

from typing import Any

from bot.core.conversation import ClosedHandoff, ConversationState
from bot.core.ports import ConversationReader
from bot.core.profile import merged_profile, name_of
from bot.handoff.ports import AgentAccount, HandoffQueueStore
from bot.handoff.state import as_json, is_active


async def waiting(store: ConversationReader, agents: HandoffQueueStore, limit: int, *,
                  now: float, alert_seconds: float) -> list[dict[str, Any]]:
    """The oldest `limit` conversations waiting for a person, oldest first:
    three store round trips at most, however long the queue. Each says how
    long it has waited, and whether longer than `alert_seconds`."""
    entries = await agents.queued(limit)
    states = await store.load_states([entry.customer for entry in entries])
    # Erased, merged away or expired: ids are never reused, so the entries
    # can go (an inactive state may be queued again).
    await agents.index_closed_all(
        [entry.customer for entry, raw in zip(entries, states, strict=True) if raw is None])
    listed = []
    for entry, raw in zip(entries, states, strict=True):
        if raw is None:
            continue
        state = ConversationState.from_json(raw)
        if not is_active(state.handoff):
            continue
        last = state.last_address.channel if state.last_address else None
        waited = max(0.0, now - entry.since)
        item: dict[str, Any] = {"customer": entry.customer, "since": entry.since,
                                "reason": state.handoff.reason, "channel": last,
                                "waited_seconds": round(waited, 1),
                                "waiting_too_long": waited > alert_seconds}
        _with_name(item, state)
        listed.append(item)
    return listed


def _with_name(item: dict[str, Any], state: ConversationState) -> None:
    # Only when a channel said it: an item without one is as it always was.
    name = name_of(state.profile)
    if name is not None:
        item["name"] = name


async def held(store: ConversationReader, agents: HandoffQueueStore,
               agent: AgentAccount) -> list[dict[str, Any]]:
    """Conversations held by `agent` (by anyone, for an admin)."""
    listed = []
    for customer_id, holder in sorted((await agents.claimed()).items()):
        if agent.role != "admin" and holder != agent.username:
            continue
        raw = await store.load_state(customer_id)
        if raw is None:
            await agents.index_closed(customer_id)  # gone, as in `waiting`
            continue
        item: dict[str, Any] = {"customer": customer_id, "agent": holder}
        _with_name(item, ConversationState.from_json(raw))
        listed.append(item)
    return listed


async def conversation(store: ConversationReader, customer_id: str, state: ConversationState,
                       history_max: int) -> dict[str, Any]:
    """Everything an agent reads of one conversation."""
    history = await store.history(customer_id, history_max)
    identities = await store.identities(customer_id)
    addresses = await store.addresses(customer_id)
    dialog = state.dialog
    return {
        "customer": customer_id,
        "handoff": as_json(state.handoff),
        "last_channel": state.last_address.channel if state.last_address else None,
        # The language to answer in ("de"); None until the customer's is known.
        "locale": state.locale,
        "channels": [{"channel": i.channel, "user_id": i.user_id} for i in identities],
        "addresses": {ch: a.to_json() for ch, a in sorted(addresses.items())},
        "flow": dialog.get("flow"),
        "slots": dialog.get("slots") or {},
        # What the channels say about the customer, merged, and each one's own.
        "profile": merged_profile(state.profile),
        **_closed_handoff(state.closed_handoff),
        "history": [e.to_json() for e in history],
    }


def _closed_handoff(closed: ClosedHandoff | None) -> dict[str, Any]:
    """The last closed handoff's times, and its rating once given."""
    if closed is None:
        return {}
    first = closed.first_response_at
    shown: dict[str, Any] = {"handoff_times": {
        "agent": closed.agent, "agent_name": closed.agent_name,
        "queued_at": closed.queued_at, "claimed_at": closed.claimed_at,
        "first_response_at": first, "closed_at": closed.closed_at,
        "first_response_seconds": round(first - closed.queued_at, 1) if first is not None else None,
        "resolution_seconds": round(closed.closed_at - closed.queued_at, 1),
    }}
    if closed.score is not None:
        shown["csat"] = {"score": closed.score, "comment": closed.comment,
                         "agent": closed.agent, "agent_name": closed.agent_name,
                         "rated_at": closed.rated_at}
    return shown
