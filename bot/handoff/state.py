"""A conversation's handoff to people: its states and what the customer is told."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, TypeGuard

from bot.core.conversation import HandoffState
from bot.handoff.ports import AgentAccount

QUEUED, CLAIMED = "queued", "claimed"
# Why a conversation nobody asked a person for is held: an admin took it.
ADMIN_TAKEOVER = "taken over by an admin"

TOO_MANY_HANDOFFS = ("You have asked for a person several times just now, so I cannot queue "
                     "this request. Please try again in a while, or tell me what you need.")
BACK_WITH_THE_BOT = "You're back with our assistant. Ask for a person again at any time."


def joined(agent_name: str) -> str:
    return f"{agent_name} from our team has joined the conversation."


def taking_over(agent_name: str) -> str:
    return f"{agent_name} from our team is taking over this conversation."


def closed_by(agent_name: str) -> str:
    return f"{agent_name} closed this conversation. Write here any time if you need anything else."


def is_active(handoff: HandoffState | None) -> TypeGuard[HandoffState]:
    """Whether a person holds or is about to hold the conversation."""
    return handoff is not None and handoff.status in (QUEUED, CLAIMED)


def is_claimed(handoff: HandoffState | None) -> TypeGuard[HandoffState]:
    """Whether a person holds the conversation."""
    return handoff is not None and handoff.status == CLAIMED


def as_json(handoff: HandoffState | None) -> dict[str, Any] | None:
    """The `handoff` of the agent API's answers."""
    return handoff.to_json() if handoff is not None else None


def waiting_notice(ahead: int, online: bool, business_hours: str) -> str:
    """What a customer is told when they join the queue."""
    if not online:
        return (f"No agent is online right now. Our team is available {business_hours}. "
                "Leave your message here and a person will answer as soon as they are back.")
    if ahead == 0:
        return "You're next in line."
    people = "1 person is" if ahead == 1 else f"{ahead} people are"
    return f"{people} waiting ahead of you."


def claimed_by(base: HandoffState, agent: AgentAccount) -> HandoffState:
    """A handoff held by `agent`, keeping why and since when it waited."""
    return replace(base, status=CLAIMED, agent=agent.username, agent_name=agent.display_name,
                   claimed_at=time.time(), started_turn=None)


def carried_over(handoff: HandoffState) -> HandoffState:
    """The same handoff, in a conversation other than the one that queued it."""
    return replace(handoff, started_turn=None)


def new_handoff(reason: str, *, started_turn: int | None = None) -> HandoffState:
    """A handoff waiting for a person from now on (queued in turn
    `started_turn`, if by a turn)."""
    return HandoffState(status=QUEUED, since=time.time(), reason=reason,
                        started_turn=started_turn)
