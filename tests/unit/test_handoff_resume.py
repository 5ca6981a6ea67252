"""A conversation handed back to the bot asks again the question its flow
keeps open (`ConversationState.question`, in the customer's language), not
whatever the bot said last; a close drops it; and a question already asked
again never gets a second "Where we left off", in any language. On both
real stores."""

from __future__ import annotations

import pytest

from bot.core.bus import LocalBus
from bot.core.catalog import LANGUAGES, text
from bot.core.conversation import ConversationState
from bot.core.model import Address, Button, ChannelIdentity, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from bot.core.ports import ContextStore
from bot.core.resume import where_we_left_off
from bot.handoff.desk import HandoffDesk
from bot.handoff.ports import AgentAccount
from bot.handoff.rating import rating_question
from bot.handoff.state import claimed_by, new_handoff
from context_store.agents_memory import MemoryAgentStore
from tests.support.engines import handoff_engine

ANN = AgentAccount(username="ann", display_name="Ann", password_hash="x", role="agent")
WEB = Address("web", "s1")
ORDER = "Wie lautet deine Bestellnummer? Sie sieht aus wie A1001."
AGAIN = "Weiter, wo wir stehen geblieben sind: "
HELP = (Button("Mit einem Menschen sprechen", "human"), Button("Abbrechen", "cancel"))


class Silent:
    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return []


class Sender:
    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    async def reachable(self, address: Address) -> bool:
        return True

    async def send(self, address: Address, outbound: Outbound) -> None:
        self.sent.append(outbound)


def bot_said(said: str, ts: float, buttons: tuple[Button, ...] = ()) -> HistoryEntry:
    return HistoryEntry(sender="bot", channel="web", text=said, ts=ts, buttons=buttons)


async def held_in_german(store: ContextStore, *, question: HistoryEntry | None,
                         history: list[HistoryEntry]) -> tuple[HandoffDesk, Sender]:
    """Customer c1, in German, held by Ann, with `history` and the flow
    waiting for an answer to `question` (None: a state saved before the
    question was kept)."""
    sender = Sender()
    _, desk = handoff_engine(store, Silent(), {"web": sender}, agents=MemoryAgentStore(),
                             bus=LocalBus())
    handoff = claimed_by(new_handoff("customer sent /agent"), ANN)
    state = ConversationState(last_address=WEB, dialog={"flow": "order_status", "waiting": True},
                              handoff=handoff, locale="de", locale_from="text",
                              question=question)
    loaded = await store.lock_and_load("c1", token="seed", ttl_seconds=5, message_key=None)
    assert loaded.locked
    assert await store.save_and_unlock(
        "c1", token="seed", state=state.to_json(), entries=history, message_key=None,
        identity=ChannelIdentity("web", "s1"), address=WEB)
    return desk, sender


async def state_of(store: ContextStore) -> ConversationState:
    return ConversationState.from_json(await store.load_state("c1"))


async def test_a_release_asks_the_kept_question_not_the_bots_last_words(
    store: ContextStore,
) -> None:
    question = bot_said(ORDER, 1.0)
    desk, sender = await held_in_german(store, question=question, history=[
        question,
        bot_said("Ich bin ein Bot, der virtuelle Assistent des Shops.", 2.0),
        bot_said(AGAIN + ORDER, 2.0),
        # The help the customer read last, with its person button they pressed.
        bot_said("Du findest sie in deiner Bestätigungs-E-Mail.", 3.0, HELP),
    ])
    await desk.release(ANN, "c1")
    back, again = sender.sent
    assert back.text == text("back_with_the_bot", "de")
    assert (again.text, again.buttons) == (AGAIN + ORDER, ())
    assert (await state_of(store)).question == question  # still open


async def test_a_release_asks_the_kept_question_with_its_buttons(store: ContextStore) -> None:
    sizes = (Button("Klein", "/size_s"), Button("Groß", "/size_l"))
    question = bot_said("Welche Größe?", 1.0, sizes)
    desk, sender = await held_in_german(store, question=question, history=[])
    await desk.release(ANN, "c1")
    assert (sender.sent[1].text, sender.sent[1].buttons) == (AGAIN + "Welche Größe?", sizes)


async def test_an_older_state_falls_back_to_the_last_prompt_without_a_second_prefix(
    store: ContextStore,
) -> None:
    desk, sender = await held_in_german(store, question=None, history=[
        bot_said(ORDER, 1.0), bot_said(AGAIN + ORDER, 2.0)])
    await desk.release(ANN, "c1")
    assert sender.sent[1].text == AGAIN + ORDER


async def test_a_close_drops_the_question(store: ContextStore) -> None:
    desk, sender = await held_in_german(store, question=bot_said(ORDER, 1.0),
                                        history=[bot_said(ORDER, 1.0)])
    await desk.close(ANN, "c1")
    state = await state_of(store)
    assert (state.dialog, state.question, state.handoff) == ({}, None, None)
    assert [o.text for o in sender.sent] == [text("agent_closed", "de", agent="Ann"),
                                             rating_question("de").text]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("said_in", LANGUAGES)
def test_a_question_asked_again_is_never_prefixed_twice(language: str, said_in: str) -> None:
    question = "Order number?"
    prefixed = text("where_we_left_off", said_in, text=question)
    twice = text("where_we_left_off", said_in, text=prefixed)
    expected = text("where_we_left_off", language, text=question)
    for said in (question, prefixed, twice):
        [again] = where_we_left_off(bot_said(said, 1.0), language)
        assert again.text == expected


def test_a_question_that_only_mentions_the_words_keeps_them() -> None:
    said = "Shall we go on from where we left off: the order?"
    [again] = where_we_left_off(bot_said(said, 1.0), "en")
    assert again.text == f"Where we left off: {said}"

