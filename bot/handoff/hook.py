"""Handoff to people, inside the customer's turn.

`HandoffHook` is the engine-level step: while a conversation waits for or is
held by a person, it takes every turn over with no reply at all (so no flow
can answer by mistake) and, once the turn is saved, sends the message live to
the agents' consoles. `/agent` asks for a person on any channel. After a
person closed the conversation, it takes the customer's rating of it
(`bot.handoff.rating`).

`HandoffPolicy` wraps the dialog policy: when a flow, the fallback counter or
an action asks for a person (`TurnContext.handoff_reason`), it marks the
conversation queued in the same turn and adds the waiting notice after the
flow's own words. Doing it in the turn, not after it, keeps the notice in
order behind the flow's reply and makes "queued" durable with the turn.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from bot.core.catalog import EXPLICIT_YES_WORDS, plain_answer, text, versions
from bot.core.conversation import HandoffState, PendingMerge
from bot.core.engine import Turn, record
from bot.core.events import HANDOFF_RATED
from bot.core.model import Button, Inbound, Outbound
from bot.core.policy import Policy, TurnContext
from bot.handoff.desk import HandoffDesk
from bot.handoff.rating import answer_rating, is_rating_payload
from bot.handoff.state import is_active

log = logging.getLogger(__name__)

AGENT_COMMAND = re.compile(r"^/(?:agent|human|operator)(?:@\w+)?$", re.IGNORECASE)


class HandoffPolicy:
    """The dialog policy, plus queueing when it asks for a person."""

    def __init__(self, inner: Policy, desk: HandoffDesk) -> None:
        self.inner = inner
        self.desk = desk

    async def decide(self, context: TurnContext) -> list[Outbound]:
        replies = await self.inner.decide(context)
        if context.handoff_reason and not is_active(context.state.handoff):
            replies.extend(await self.desk.begin(context, context.handoff_reason))
        return replies


class HandoffHook:
    """Silence while handed off, live messages to agents, and `/agent`."""

    def __init__(self, desk: HandoffDesk) -> None:
        self.desk = desk

    async def intercept(self, context: TurnContext) -> list[Outbound] | None:
        handoff = context.state.handoff
        if is_active(handoff):
            # Erasing one's data stays possible while a person holds the chat.
            return _erase_request(context, handoff) or []
        closed = context.state.closed_handoff
        if closed is not None and closed.rating in ("asked", "comment") \
                and FORGET_COMMAND.match(context.inbound.text.strip()):
            # Asking to be forgotten is never a comment: the rating ends there.
            context.state.closed_handoff = replace(
                closed, rating="done" if closed.score is not None else "dropped")
        elif closed is not None and (closed.rating in ("asked", "comment")
                                     or is_rating_payload(context.inbound.payload)):
            # The answer to "how did we do?" (or an old rating button pressed
            # again); anything else goes on as usual.
            rated = await answer_rating(context, self.desk.agents, self.desk.clock())
            if rated is not None:
                return rated
        if AGENT_COMMAND.match(context.inbound.text.strip()):
            context.handoff_reason = "customer sent /agent"
            notice = await self.desk.begin(context, context.handoff_reason)
            if context.handoff_reason is None:  # refused: asked too often
                return notice
            return [Outbound(text=text("handoff_asked", context.state.locale)), *notice]
        return None

    async def after_save(self, context: TurnContext, turn: Turn) -> None:
        state = context.state
        if context.erase_customer:
            # The engine erases the customer next: nothing of them stays listed.
            await self.desk.forget(context.customer_id)
            return
        if isinstance(state.pending_link, PendingMerge) and state.pending_link.merge_into:
            # The link hook has just joined this customer into another one,
            # and the desk, told of every merge, has moved the handoff along.
            return
        if is_active(state.handoff):
            entries = record(context.inbound, list(turn.replies))
            await self.desk.announce(context.customer_id, state, entries)
        elif context.handoff_reason:
            # The policy asked for a person but is not wrapped in HandoffPolicy.
            await self.desk.queue_later(context.customer_id, context.handoff_reason)
        await self.desk.announce_internal(context.customer_id, state, context.internal)
        if any(entry.event == "rated" for entry in context.internal):
            closed = state.closed_handoff
            await self.desk.publish({"type": "rated", "customer": context.customer_id,
                                     "score": closed.score if closed is not None else None})
            if closed is not None:
                # Once with the score, and again if a comment follows.
                await self.desk.events.emit(context.customer_id, HANDOFF_RATED, {
                    "record": closed.record,
                    "csat": {"score": closed.score, "comment": closed.comment}})


# In each of the catalog's languages: a customer is told the words in theirs.
FORGET_COMMAND = re.compile(r"^/?¡?(?:forget me|forget|delete my data|vergiss mich"
                            r"|lösche? meine daten|olv[ií]dame|borra mis datos)[.!]?$",
                            re.IGNORECASE)
ERASE_YES, ERASE_NO = "erase_yes", "erase_no"


def _erase_request(context: TurnContext, handoff: HandoffState) -> list[Outbound]:
    """`forget me` during a handoff: ask, then erase on an explicit yes only.
    Any other message drops the question, so a "yes" typed later for the
    agent erases nothing: the customer is told nothing was erased, and the
    message goes to the agents as every message does (the turn's entries are
    announced whatever it answers). An empty list: nothing asked, nothing to say."""
    inbound, locale = context.inbound, context.state.locale
    if FORGET_COMMAND.match(inbound.text.strip()) or inbound.payload == "forget_me":
        context.state.handoff = replace(handoff, confirm_erase=True)
        return [Outbound(
            text=text("erase_confirm", locale),
            buttons=(Button(text("erase_yes_button", locale), ERASE_YES),
                     Button(text("erase_no_button", locale), ERASE_NO)),
        )]
    if not handoff.confirm_erase:
        return []
    if _explicit_yes(inbound):
        context.erase_customer = True
        return [Outbound(text=text("erase_done", locale))]
    context.state.handoff = replace(handoff, confirm_erase=False)
    return [Outbound(text=text("erase_kept", locale))]


# The yes button's title counts when typed back, in any language.
_TYPED_YES = EXPLICIT_YES_WORDS | {plain_answer(title) for title in versions("erase_yes_button")}


def _explicit_yes(inbound: Inbound) -> bool:
    """The yes button, or a plain yes typed (not "ok", "sure" or "yes?");
    another button's payload is no yes, whatever its title says."""
    if inbound.payload is not None:
        return inbound.payload == ERASE_YES
    typed = inbound.text.strip()
    return not typed.endswith("?") and plain_answer(typed) in _TYPED_YES
