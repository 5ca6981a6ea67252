"""A conversation's handoff to people: its states and what the customer is told."""

from __future__ import annotations

import time
from typing import Any

from bot.handoff.ports import AgentAccount

ASKED = "A person from our team will take over this conversation shortly."
TOO_MANY_HANDOFFS = ("You have asked for a person several times just now, so I cannot queue "
                     "this request. Please try again in a while, or tell me what you need.")


def is_active(handoff: dict[str, Any] | None) -> bool:
    """Whether a person holds or is about to hold the conversation."""
    return handoff is not None and handoff.get("status") in ("queued", "claimed")


def waiting_notice(ahead: int, online: bool, business_hours: str) -> str:
    """What a customer is told when they join the queue."""
    if not online:
        return (f"No agent is online right now. Our team is available {business_hours}. "
                "Leave your message here and a person will answer as soon as they are back.")
    if ahead == 0:
        return "You're next in line."
    people = "1 person is" if ahead == 1 else f"{ahead} people are"
    return f"{people} waiting ahead of you."


def claimed_by(base: dict[str, Any], agent: AgentAccount) -> dict[str, Any]:
    """A handoff held by `agent`, keeping why and since when it waited."""
    kept = {k: v for k, v in base.items() if k != "started_turn"}
    return {**kept, "status": "claimed", "agent": agent.username,
            "agent_name": agent.display_name, "claimed_at": time.time()}


def new_handoff(reason: str) -> dict[str, Any]:
    """A handoff waiting for a person from now on."""
    return {"status": "queued", "since": time.time(), "reason": reason,
            "agent": None, "agent_name": None}
