"""A conversation's handoff to people: its states and what the customer is told."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, TypeGuard

from bot.core import metrics
from bot.core.catalog import text
from bot.core.conversation import HandoffState
from bot.handoff.ports import AgentAccount

QUEUED, CLAIMED = "queued", "claimed"
# Why a conversation nobody asked a person for is held: an admin took it.
ADMIN_TAKEOVER = "taken over by an admin"


# What the customer is told, in their conversation's language (`locale`).
def too_many_handoffs(locale: str | None = None) -> str:
    return text("too_many_handoffs", locale)


def back_with_the_bot(locale: str | None = None) -> str:
    return text("back_with_the_bot", locale)


def joined(agent_name: str, locale: str | None = None) -> str:
    return text("agent_joined", locale, agent=agent_name)


def taking_over(agent_name: str, locale: str | None = None) -> str:
    return text("agent_taking_over", locale, agent=agent_name)


def closed_by(agent_name: str, locale: str | None = None) -> str:
    return text("agent_closed", locale, agent=agent_name)


def is_active(handoff: HandoffState | None) -> TypeGuard[HandoffState]:
    """Whether a person holds or is about to hold the conversation."""
    return handoff is not None and handoff.status in (QUEUED, CLAIMED)


def is_claimed(handoff: HandoffState | None) -> TypeGuard[HandoffState]:
    """Whether a person holds the conversation."""
    return handoff is not None and handoff.status == CLAIMED


def as_json(handoff: HandoffState | None) -> dict[str, Any] | None:
    """The `handoff` of the agent API's answers."""
    return handoff.to_json() if handoff is not None else None


def waiting_notice(ahead: int, online: bool, business_hours: str,
                   locale: str | None = None) -> str:
    """What a customer is told when they join the queue."""
    if not online:
        return text("nobody_online", locale, business_hours=business_hours)
    if ahead == 0:
        return text("next_in_line", locale)
    if ahead == 1:
        return text("one_ahead", locale)
    return text("many_ahead", locale, ahead=ahead)


def claimed_by(base: HandoffState, agent: AgentAccount,
               now: float | None = None) -> HandoffState:
    """A handoff held by `agent`, keeping why and since when it waited, and
    when a person first answered (a transfer does not start the clock again)."""
    return replace(base, status=CLAIMED, agent=agent.username, agent_name=agent.display_name,
                   claimed_at=time.time() if now is None else now, started_turn=None)


def carried_over(handoff: HandoffState) -> HandoffState:
    """The same handoff, in a conversation other than the one that queued it."""
    return replace(handoff, started_turn=None)


def observe_wait(claimed: list[HandoffState]) -> None:
    """The wait of a handoff a person took just now: from the customer's
    request, not from an admin taking over a conversation nobody queued."""
    for handoff in claimed:
        if handoff.status == QUEUED and handoff.reason != ADMIN_TAKEOVER:
            metrics.HANDOFF_WAIT_SECONDS.observe(max(0.0, time.time() - handoff.since))


def new_handoff(reason: str, now: float | None = None, *,
                started_turn: int | None = None) -> HandoffState:
    """A handoff waiting for a person from `now` (by default, now) on
    (queued in turn `started_turn`, if by a turn)."""
    return HandoffState(status=QUEUED, since=time.time() if now is None else now,
                        reason=reason, started_turn=started_turn)


# The team's own lines in the timeline (`HistoryEntry.internal`), in English:
# the console's language, not the customer's.
def queued_line(reason: str | None) -> str:
    return f"Waiting for a person: {reason}" if reason else "Waiting for a person"


def claimed_line(agent_name: str, *, assigned: bool) -> str:
    return (f"Assigned to {agent_name} automatically" if assigned
            else f"{agent_name} took the conversation")


def transferred_line(by_name: str, from_name: str | None, to_name: str) -> str:
    if from_name is None or from_name == by_name:
        return f"{by_name} handed the conversation to {to_name}"
    return f"{by_name} moved the conversation from {from_name} to {to_name}"


def released_line(agent_name: str) -> str:
    return f"{agent_name} gave the conversation back to the bot"


def closed_line(agent_name: str) -> str:
    return f"{agent_name} closed the conversation"
