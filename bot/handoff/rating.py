"""The customer's rating of a handoff a person closed (CSAT).

Closing asks "how did we do?" with buttons 1 to 5 (`rating_question`); the
customer's next message is read here (`answer_rating`): a score, by button
or typed, is kept in the conversation state and on the report's anonymous
record, then an optional comment is asked for. Anything else instead of a
score drops the question and the turn goes on as usual, so a customer who
just carries on talking is answered by the bot as if nothing had been asked.

Where the rating stands is `ClosedHandoff.rating` (`bot.core.conversation`):
`asked`, `comment`, then `done`; or `dropped`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from bot.core.catalog import text
from bot.core.conversation import ClosedHandoff
from bot.core.errors import StoreError
from bot.core.model import Button, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from bot.handoff.ports import HandoffRecordStore

log = logging.getLogger(__name__)

SCORE_PAYLOAD = "csat:"
SKIP_PAYLOAD = "csat:skip"
SCORES = range(1, 6)
COMMENT_MAX_LENGTH = 1000
# A score typed instead of pressed: "4", " 5 ", "4/5"; nothing looser, so a
# message that merely starts with a number ("2 questions...") is no rating.
TYPED_SCORE = re.compile(r"^([1-5])(?:\s*/\s*5)?$")


def rating_question(locale: str | None, record: str | None = None) -> Outbound:
    """What closing asks the customer, in their language. The buttons name
    the closed handoff's `record`, so one of an earlier close rates nothing."""
    suffix = f":{record}" if record else ""
    return Outbound(text=text("rating_question", locale),
                    buttons=tuple(Button(str(score), f"{SCORE_PAYLOAD}{score}{suffix}")
                                  for score in SCORES))


async def answer_rating(context: TurnContext, records: HandoffRecordStore,
                        now: float) -> list[Outbound] | None:
    """The customer's message read as their answer to the rating question
    or to the comment question: the replies, or None when it is no such
    answer and the turn goes on as usual (the question is then dropped).

    Changes `context.state.closed_handoff` and adds the team's `rated`
    lines to `context.internal`; publishes nothing itself."""
    closed = context.state.closed_handoff
    if closed is None:
        return None
    locale = context.state.locale
    payload = context.inbound.payload
    pressed, record = _pressed_score(payload)
    if pressed is not None and record is not None and record != closed.record:
        # A button of an earlier close: that rating is over.
        return [Outbound(text=text("rating_closed", locale))]
    if pressed is not None and closed.score is not None:
        # An old button pressed again: a conversation is rated once.
        return [Outbound(text=text("rating_already_given", locale))]
    if closed.rating == "asked" or (pressed is not None and closed.rating == "dropped"):
        score = pressed if payload is not None else _typed_score(context.inbound.text)
        if score is None:
            context.state.closed_handoff = replace(closed, rating="dropped")
            return None
        return await _scored(context, closed, score, records, now)
    if closed.rating == "comment":
        return _commented(context, closed, now)
    if payload == SKIP_PAYLOAD and closed.score is not None:
        return [Outbound(text=text("rating_thanks", locale))]
    return None


async def _scored(context: TurnContext, closed: ClosedHandoff, score: int,
                  records: HandoffRecordStore, now: float) -> list[Outbound]:
    context.state.closed_handoff = replace(closed, rating="comment", score=score, rated_at=now)
    context.internal.append(HistoryEntry.internal("rated", f"Rated {score}/5", now,
                                                  agent_name=closed.agent_name))
    try:
        if not await records.rate_record(closed.record, score):
            log.info("the report's record of a closed handoff was gone or rated already")
    except StoreError as exc:
        # The conversation keeps the score; the report misses one rating.
        log.warning("could not keep a rating on the report's record: %s", exc)
    locale = context.state.locale
    return [Outbound(text=text("rating_ask_comment", locale),
                     buttons=(Button(text("rating_skip_button", locale), SKIP_PAYLOAD),))]


def _commented(context: TurnContext, closed: ClosedHandoff, now: float) -> list[Outbound] | None:
    inbound, locale = context.inbound, context.state.locale
    context.state.closed_handoff = replace(closed, rating="done")
    if inbound.payload == SKIP_PAYLOAD:
        return [Outbound(text=text("rating_thanks", locale))]
    comment = inbound.text.strip()
    if inbound.payload is not None or comment.startswith("/") or not comment:
        # Another button, a command or nothing to read: no comment, and the
        # bot answers it as it would have.
        return None
    context.state.closed_handoff = replace(closed, rating="done",
                                           comment=comment[:COMMENT_MAX_LENGTH])
    # The customer's words stay theirs: the console reads them in the view.
    context.internal.append(HistoryEntry.internal("rated", "Comment added", now,
                                                  agent_name=closed.agent_name))
    return [Outbound(text=text("rating_comment_thanks", locale))]


def is_rating_payload(payload: str | None) -> bool:
    """Whether a button pressed is one of the rating's (a score or No,
    thanks), whatever the rating's stage: an old one may be pressed again."""
    return payload is not None and payload.startswith(SCORE_PAYLOAD)


def _pressed_score(payload: str | None) -> tuple[int | None, str | None]:
    """The score a rating button gives, and the record it names (`csat:4:<record>`;
    `csat:4` names none)."""
    if payload is None or not payload.startswith(SCORE_PAYLOAD):
        return None, None
    digits, _, record = payload.removeprefix(SCORE_PAYLOAD).partition(":")
    if digits not in {str(score) for score in SCORES}:
        return None, None
    return int(digits), record or None


def _typed_score(typed: str) -> int | None:
    match = TYPED_SCORE.match(typed.strip())
    return int(match.group(1)) if match else None
