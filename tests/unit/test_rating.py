"""The customer's rating of a closed handoff, read turn by turn on the
memory agent store: the question, a score pressed or typed, the comment or
its skip, anything else dropping the question, old buttons pressed again,
the team's timeline lines, and a store failing under it."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from bot.core.conversation import ClosedHandoff, ConversationState, RatingStage
from bot.core.errors import StoreUnavailable
from bot.core.model import Address, Button, ChannelIdentity, Inbound, Outbound
from bot.core.policy import TurnContext
from bot.handoff.ports import HandoffRecord
from bot.handoff.rating import answer_rating, rating_question
from context_store.agents_memory import MemoryAgentStore

CLOSED_AT = 1_800_000_000.0
NOW = CLOSED_AT + 30
ASK_COMMENT = ("Thank you for your rating! Anything you'd like to add? Write it here, or press "
               "No, thanks.")
SKIP = (Button("No, thanks", "csat:skip"),)


def closed(rating: RatingStage = "asked", score: int | None = None,
           comment: str | None = None) -> ClosedHandoff:
    return ClosedHandoff(record="r1", agent="ann", agent_name="Ann", queued_at=CLOSED_AT - 600,
                         claimed_at=CLOSED_AT - 500, first_response_at=CLOSED_AT - 480,
                         closed_at=CLOSED_AT, rating=rating, score=score, comment=comment,
                         rated_at=None if score is None else CLOSED_AT + 5)


def turn(text: str, payload: str | None = None, *, handoff: ClosedHandoff | None = None,
         locale: str | None = None) -> TurnContext:
    state = ConversationState(closed_handoff=handoff if handoff is not None else closed(),
                              locale=locale)
    inbound = Inbound(identity=ChannelIdentity("web", "s1"), address=Address("web", "s1"),
                      message_id="m1", text=text, payload=payload)
    return TurnContext(customer_id="c1", inbound=inbound, state=state)


@pytest.fixture
async def records() -> MemoryAgentStore:
    store = MemoryAgentStore()
    await store.put_record(HandoffRecord(id="r1", agent="ann", agent_name="Ann",
                                         queued_at=CLOSED_AT - 600, claimed_at=CLOSED_AT - 500,
                                         first_response_at=CLOSED_AT - 480,
                                         closed_at=CLOSED_AT), keep_seconds=86400)
    return store


async def kept_score(records: MemoryAgentStore) -> int | None:
    [record] = await records.records_between(CLOSED_AT, CLOSED_AT + 1, 10)
    return record.csat


def lines(context: TurnContext) -> list[tuple[str | None, str, str | None]]:
    return [(entry.event, entry.text, entry.agent_name) for entry in context.internal]


# The question.


@pytest.mark.parametrize(("locale", "question"), [
    (None, "How did we do? Please rate this conversation from 1 (poor) to 5 (great)."),
    ("de-AT", "Wie war's? Bitte bewerte dieses Gespräch von 1 (schlecht) bis 5 (super)."),
    ("es", "¿Qué tal lo hicimos? Valora esta conversación del 1 (mal) al 5 (genial), por favor."),
])
def test_the_question_offers_five_buttons_in_the_customers_language(
    locale: str | None, question: str,
) -> None:
    assert rating_question(locale) == Outbound(
        text=question, buttons=tuple(Button(str(n), f"csat:{n}") for n in range(1, 6)))


# A score.


async def test_a_pressed_score_is_kept_and_a_comment_is_asked_for(
    records: MemoryAgentStore,
) -> None:
    context = turn("4", "csat:4")
    replies = await answer_rating(context, records, NOW)
    assert replies == [Outbound(text=ASK_COMMENT, buttons=SKIP)]
    assert context.state.closed_handoff == replace(closed("comment", score=4), rated_at=NOW)
    assert await kept_score(records) == 4
    assert lines(context) == [("rated", "Rated 4/5", "Ann")]
    assert [entry.ts for entry in context.internal] == [NOW]


@pytest.mark.parametrize(("typed", "score"), [
    ("4", 4), (" 5 ", 5), ("1", 1), ("4/5", 4), ("3 / 5", 3), ("2/5\n", 2),
])
async def test_a_score_typed_as_a_digit_counts(records: MemoryAgentStore, typed: str,
                                               score: int) -> None:
    context = turn(typed)
    assert await answer_rating(context, records, NOW) == [Outbound(text=ASK_COMMENT,
                                                                   buttons=SKIP)]
    assert context.state.closed_handoff is not None
    assert context.state.closed_handoff.score == score
    assert await kept_score(records) == score


@pytest.mark.parametrize(("typed", "payload"), [
    ("Where is my order?", None), ("0", None), ("6", None), ("45", None), ("4/10", None),
    ("4 stars", None), ("2 questions about my order", None), ("five", None), ("/agent", None),
    ("", None), ("4", "menu:hours"), ("9", "csat:9"), ("No, thanks", "csat:skip"),
])
async def test_anything_else_drops_the_question_and_the_turn_goes_on(
    records: MemoryAgentStore, typed: str, payload: str | None,
) -> None:
    context = turn(typed, payload)
    assert await answer_rating(context, records, NOW) is None
    assert context.state.closed_handoff == closed("dropped")
    assert await kept_score(records) is None
    assert context.internal == []


async def test_the_replies_speak_the_customers_language(records: MemoryAgentStore) -> None:
    context = turn("5", "csat:5", locale="de")
    assert await answer_rating(context, records, NOW) == [Outbound(
        text="Danke für deine Bewertung! Möchtest du noch etwas ergänzen? Schreib es hier "
             "oder tippe auf Nein, danke.",
        buttons=(Button("Nein, danke", "csat:skip"),))]
    comment = turn("Sehr gut", handoff=context.state.closed_handoff, locale="es")
    assert await answer_rating(comment, records, NOW) == [
        Outbound(text="Gracias, se lo hemos hecho llegar al equipo.")]


class FailingRecords(MemoryAgentStore):
    async def rate_record(self, record_id: str, score: int) -> bool:
        raise StoreUnavailable("the agent store is away")


async def test_a_store_failing_loses_the_report_one_rating_never_the_customers_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = turn("3", "csat:3")
    with caplog.at_level(logging.WARNING, logger="bot.handoff.rating"):
        replies = await answer_rating(context, FailingRecords(), NOW)
    assert replies == [Outbound(text=ASK_COMMENT, buttons=SKIP)]
    assert context.state.closed_handoff is not None
    assert (context.state.closed_handoff.rating, context.state.closed_handoff.score) == (
        "comment", 3)
    assert lines(context) == [("rated", "Rated 3/5", "Ann")]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "the agent store is away" in caplog.records[0].getMessage()


async def test_a_record_the_report_no_longer_has_still_rates_the_conversation(
    records: MemoryAgentStore,
) -> None:
    context = turn("2", "csat:2", handoff=replace(closed(), record="gone"))
    assert await answer_rating(context, records, NOW) == [Outbound(text=ASK_COMMENT,
                                                                   buttons=SKIP)]
    assert context.state.closed_handoff is not None
    assert context.state.closed_handoff.score == 2
    assert await kept_score(records) is None


# The comment.


async def test_no_thanks_ends_it_with_a_thank_you(records: MemoryAgentStore) -> None:
    context = turn("No, thanks", "csat:skip", handoff=closed("comment", score=4))
    assert await answer_rating(context, records, NOW) == [Outbound(text="Thank you!")]
    assert context.state.closed_handoff == closed("done", score=4)
    assert context.internal == []


async def test_a_comment_is_kept_and_the_team_told_one_was_added_without_its_words(
    records: MemoryAgentStore,
) -> None:
    context = turn("  Ann was quick and kind.  ", handoff=closed("comment", score=4))
    assert await answer_rating(context, records, NOW) == [
        Outbound(text="Thank you, we've passed it on.")]
    assert context.state.closed_handoff == closed("done", score=4,
                                                  comment="Ann was quick and kind.")
    assert lines(context) == [("rated", "Comment added", "Ann")]
    assert all("quick" not in entry.text for entry in context.internal)


async def test_a_long_comment_is_cut_to_a_thousand_characters(
    records: MemoryAgentStore,
) -> None:
    context = turn("é" * 1500, handoff=closed("comment", score=2))
    await answer_rating(context, records, NOW)
    assert context.state.closed_handoff is not None
    assert context.state.closed_handoff.comment == "é" * 1000


@pytest.mark.parametrize(("typed", "payload"), [
    ("Opening hours", "menu:hours"), ("/agent", None), ("/start", None), ("   ", None),
])
async def test_another_button_or_a_command_ends_it_without_a_comment_and_goes_on(
    records: MemoryAgentStore, typed: str, payload: str | None,
) -> None:
    context = turn(typed, payload, handoff=closed("comment", score=5))
    assert await answer_rating(context, records, NOW) is None
    assert context.state.closed_handoff == closed("done", score=5)
    assert context.internal == []


# Old buttons, and a question no longer open.


@pytest.mark.parametrize("stage", ["comment", "done"])
async def test_a_score_pressed_again_is_never_a_new_rating(
    records: MemoryAgentStore, stage: RatingStage,
) -> None:
    first = turn("4", "csat:4")
    await answer_rating(first, records, NOW)
    handoff = first.state.closed_handoff
    assert handoff is not None
    again = turn("1", "csat:1", handoff=replace(handoff, rating=stage))
    assert await answer_rating(again, records, NOW + 60) == [
        Outbound(text="You've already rated this conversation, thank you.")]
    assert again.state.closed_handoff is not None
    assert (again.state.closed_handoff.rating, again.state.closed_handoff.score,
            again.state.closed_handoff.rated_at) == (stage, 4, NOW)
    assert await kept_score(records) == 4
    assert again.internal == []


async def test_a_score_pressed_after_the_question_was_dropped_still_rates(
    records: MemoryAgentStore,
) -> None:
    context = turn("5", "csat:5", handoff=closed("dropped"))
    assert await answer_rating(context, records, NOW) == [Outbound(text=ASK_COMMENT,
                                                                   buttons=SKIP)]
    assert context.state.closed_handoff is not None
    assert (context.state.closed_handoff.rating, context.state.closed_handoff.score) == (
        "comment", 5)
    assert await kept_score(records) == 5


async def test_no_thanks_pressed_again_is_thanked_again(records: MemoryAgentStore) -> None:
    context = turn("No, thanks", "csat:skip", handoff=closed("done", score=3))
    assert await answer_rating(context, records, NOW) == [Outbound(text="Thank you!")]
    assert context.state.closed_handoff == closed("done", score=3)


@pytest.mark.parametrize(("handoff", "typed", "payload"), [
    (closed("dropped"), "4", None),
    (closed("dropped"), "No, thanks", "csat:skip"),
    (closed("done", score=3), "5", None),
    (closed("done", score=3, comment="ok"), "more words", None),
])
async def test_a_question_no_longer_open_leaves_the_turn_to_the_bot(
    records: MemoryAgentStore, handoff: ClosedHandoff, typed: str, payload: str | None,
) -> None:
    context = turn(typed, payload, handoff=handoff)
    assert await answer_rating(context, records, NOW) is None
    assert context.state.closed_handoff == handoff
    assert context.internal == []


async def test_no_closed_handoff_no_answer(records: MemoryAgentStore) -> None:
    context = turn("4", "csat:4")
    context.state.closed_handoff = None
    assert await answer_rating(context, records, NOW) is None
    assert context.state.closed_handoff is None


# Buttons naming their close.


def test_the_buttons_name_the_close_they_rate() -> None:
    assert [b.payload for b in rating_question("es", "r1").buttons] == [
        f"csat:{n}:r1" for n in range(1, 6)]


async def test_a_button_naming_this_close_rates_it(records: MemoryAgentStore) -> None:
    context = turn("4", "csat:4:r1")
    assert await answer_rating(context, records, NOW) == [Outbound(text=ASK_COMMENT,
                                                                   buttons=SKIP)]
    assert await kept_score(records) == 4


@pytest.mark.parametrize("handoff", [closed("asked"), closed("comment", score=2),
                                     closed("dropped")])
async def test_a_button_of_an_earlier_close_rates_nothing(
    records: MemoryAgentStore, handoff: ClosedHandoff,
) -> None:
    context = turn("5", "csat:5:r0", handoff=handoff)
    assert await answer_rating(context, records, NOW) == [
        Outbound(text="That rating has closed, thank you.")]
    assert context.state.closed_handoff == handoff
    assert await kept_score(records) is None
    assert context.internal == []
