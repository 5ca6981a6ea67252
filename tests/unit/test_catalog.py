"""The catalog of Segue's own sentences: every sentence in every language
with the same placeholders, the language a locale picks, the English texts
as they have always read, and the other languages where they are used."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.core import catalog
from bot.core.catalog import LANGUAGES, SENTENCES, placeholders, text
from bot.core.conversation import LinkOffer
from bot.core.engine import APOLOGY, Engine
from bot.core.model import Address, ChannelIdentity, HistoryEntry, Inbound, Outbound
from bot.core.policy import HANDOFF_ASKED, TurnContext
from bot.core.resume import where_we_left_off
from bot.handoff.state import (
    back_with_the_bot,
    closed_by,
    joined,
    taking_over,
    too_many_handoffs,
    waiting_notice,
)
from bot.linking.codes import a_chat_on, channel_name, channels_as_typed, channels_by_name
from bot.linking.service import LinkService
from context_store import MemoryContextStore
from tests.support.linking_rig import Person, code_in, make

PATTERNS = Path(__file__).resolve().parents[2] / "dialogs" / "patterns"


@pytest.mark.parametrize("key", sorted(SENTENCES))
def test_every_sentence_is_in_every_language_with_the_same_placeholders(key: str) -> None:
    versions = SENTENCES[key]
    assert sorted(versions) == sorted(LANGUAGES), f"{key} lacks a language"
    english = placeholders(versions["en"])
    for language, sentence in versions.items():
        assert sentence.strip(), f"{key} is empty in {language}"
        assert placeholders(sentence) == english, f"{key} in {language}: other placeholders"


def test_a_locale_picks_its_language_and_english_is_the_rest() -> None:
    assert text("next_in_line", "de") == "Du bist als Nächstes dran."
    assert text("next_in_line", "es-MX") == "Tu turno es el siguiente."
    assert text("next_in_line", "de_AT") == "Du bist als Nächstes dran."
    for unknown in (None, "", "fr", "xx-YY"):
        assert text("next_in_line", unknown) == "You're next in line."


def test_a_sentence_not_yet_translated_is_said_in_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(SENTENCES, "new_sentence", {"en": "Hello {name}."})
    assert text("new_sentence", "de", name="Ana") == "Hello Ana."


def test_where_we_left_off_reads_as_the_dialogs_resume_pattern() -> None:
    """The desk and linking ask a question again with the very words a
    dialog's `utter_pattern_resume` uses, in each language."""
    prompt = HistoryEntry(sender="bot", text="Order number?", ts=0.0, channel="web")
    for language in LANGUAGES:
        source = yaml.safe_load((PATTERNS / language / "responses.yml").read_text("utf-8"))
        pattern = source["responses"]["utter_pattern_resume"]["text"]
        [said] = where_we_left_off(prompt, language)
        assert said.text == pattern.replace("{question}", "Order number?")


def test_the_english_texts_read_as_they_always_have() -> None:
    assert HANDOFF_ASKED == "A person from our team will take over this conversation shortly."
    assert APOLOGY.text == "Sorry, something went wrong on our side. Please try again in a moment."
    assert too_many_handoffs() == (
        "You have asked for a person several times just now, so I cannot queue this request. "
        "Please try again in a while, or tell me what you need.")
    assert back_with_the_bot() == (
        "You're back with our assistant. Ask for a person again at any time.")
    assert joined("Ann") == "Ann from our team has joined the conversation."
    assert taking_over("Bob") == "Bob from our team is taking over this conversation."
    assert closed_by("Ann") == (
        "Ann closed this conversation. Write here any time if you need anything else.")
    assert waiting_notice(0, False, "9-5") == (
        "No agent is online right now. Our team is available 9-5. Leave your message here "
        "and a person will answer as soon as they are back.")
    assert [waiting_notice(n, True, "9-5") for n in (0, 1, 2)] == [
        "You're next in line.", "1 person is waiting ahead of you.",
        "2 people are waiting ahead of you."]
    assert channels_by_name() == "web chat, Telegram or Slack"
    assert channels_as_typed() == "web, telegram or slack"
    assert (a_chat_on("web"), a_chat_on("telegram")) == ("A web chat", "A Telegram chat")
    question = LinkService.question(LinkOffer("link", "c1", "telegram"), again=True)
    assert question.text == (
        "Please answer yes or no. You opened a link that comes from a Telegram conversation. "
        "If you say yes, this chat joins it: whoever is in that Telegram conversation will "
        "read this chat, its history and everything written here from now on. Say yes only "
        "if that Telegram conversation is yours.")
    assert [b.title for b in question.buttons] == ["Yes, link it", "No, don't link"]


def test_the_handoff_notices_in_german_and_spanish() -> None:
    assert waiting_notice(2, True, "9-5", "de") == "Vor dir warten 2 Personen."
    assert waiting_notice(1, True, "9-5", "es") == "Hay 1 persona esperando antes que tú."
    assert "erreichbar: 9-5." in waiting_notice(0, False, "9-5", "de")
    assert joined("Ann", "es") == "Ann, de nuestro equipo, se ha unido a la conversación."
    assert closed_by("Ann", "de").startswith("Ann hat dieses Gespräch beendet.")
    assert too_many_handoffs("es").startswith("Acabas de pedir hablar con una persona")
    assert (channel_name("web", "de"), channel_name("slack", "es")) == ("Web-Chat", "Slack")
    assert channels_by_name("es") == "chat web, Telegram o Slack"
    assert a_chat_on("slack", "es") == "Un chat de Slack"


async def test_a_failed_turn_apologises_in_the_conversations_language() -> None:
    class SpeaksGermanThenFails:
        """As the dialog runtime does: the language is known, then an action breaks."""

        async def decide(self, turn: TurnContext) -> list[Outbound]:
            turn.state.locale = "de"
            raise RuntimeError("bug")

    engine = Engine(store=MemoryContextStore(), policy=SpeaksGermanThenFails())
    turn = await engine.process(Inbound(
        identity=ChannelIdentity("web", "u1"), address=Address("web", "u1"),
        message_id="1", text="hallo"))
    assert [r.text for r in turn.replies] == [
        "Entschuldige, bei uns ist etwas schiefgelaufen. Bitte versuch es gleich noch einmal."]


@pytest.mark.parametrize(("typed", "linked"), [
    ("ja", True), ("Sí", True), ("Ja, verknüpfen", True), ("nein", False),
    ("No, no lo vincules", False)])
async def test_a_link_question_takes_yes_and_no_in_any_language(typed: str,
                                                                linked: bool) -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    code = code_in(await web.say("link"))
    telegram = Person(engine, "telegram", "1")
    await telegram.say(f"link {code}")
    [answer, *_] = await telegram.say(typed)
    assert answer.text.startswith("Linked!" if linked else "OK, nothing was linked.")
    assert (await telegram.customer() == await web.customer()) is linked


def test_the_catalogs_languages_answer_yes_and_no() -> None:
    assert {"yes", "ja", "sí"} <= catalog.YES_WORDS
    assert {"no", "nein"} <= catalog.NO_WORDS
    assert not catalog.YES_WORDS & catalog.NO_WORDS
