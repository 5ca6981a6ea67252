"""The repair patterns and the conversation's language, turn by turn through the
demo bot's policy (end to end over the channels: tests/integration/test_repair_patterns.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.core.conversation import ConversationState
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.policy import TurnContext
from bot.core.settings import Settings
from dialogs.build import build_dialog_policy
from dialogs.runtime import DialogPolicy

ASK = "What is your order number? It looks like A1001."
RESUMED = "Where we left off: " + ASK
CANCELLED = "Okay, I've stopped there. What else can I do for you?"


class Chat:
    """One customer on one channel; the state goes through JSON between turns."""

    def __init__(self, policy: DialogPolicy, channel: str = "web",
                 locale: str | None = None) -> None:
        self.policy, self.channel, self.locale = policy, channel, locale
        self.state = ConversationState()
        self.last: TurnContext | None = None
        self.n = 0

    async def say(self, text: str, payload: str | None = None) -> list[Outbound]:
        self.n += 1
        inbound = Inbound(ChannelIdentity(self.channel, "u1"), Address(self.channel, "u1"),
                          f"m{self.n}", text, payload, locale=self.locale)
        self.state = ConversationState.from_json(self.state.to_json())
        self.last = TurnContext("cust-1", inbound, self.state)
        return await self.policy.decide(self.last)

    async def texts(self, text: str, payload: str | None = None) -> list[str]:
        return [r.text for r in await self.say(text, payload)]

    @property
    def dialog(self) -> dict[str, object]:
        return self.state.dialog


@pytest.fixture(scope="module")
def demo() -> DialogPolicy:
    return build_dialog_policy(Settings())


async def test_cancel_leaves_the_flow_and_forget_it_is_a_cancel(demo: DialogPolicy) -> None:
    for word in ("cancel", "never mind", "forget it", "stop"):
        chat = Chat(demo)
        assert await chat.texts("where is my order") == [ASK]
        assert await chat.texts(word) == [CANCELLED], word
        assert chat.dialog["flow"] is None
        assert chat.last is not None and not chat.last.erase_customer
    assert await Chat(demo).texts("cancel") == [
        "There's nothing in progress to stop. What can I do for you?"]


async def test_a_correction_redoes_the_flow_with_the_new_value(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    [status, _] = await chat.texts("where is my order A1001")
    assert status.startswith("Order A1001 is shipped")
    corrected, status, _ = await chat.texts("no, I meant A1003")
    assert corrected == "Got it: A1003 instead of A1001."
    assert status.startswith("Order A1003 is delivered")
    # The same request for another order is no correction.
    status, _ = await chat.texts("where is order A1002")
    assert status.startswith("Order A1002 is processing")
    # The last number named answers the question.
    chat = Chat(demo)
    await chat.say("where is my order")
    [status, _] = await chat.texts("A1001 — sorry, A1002")
    assert status.startswith("Order A1002 is processing")


async def test_a_side_question_is_answered_then_the_open_question_asked_again(
        demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("where is my order")
    hours, again = await chat.texts("what are your opening hours")
    assert hours.startswith("Our support team is there") and again == RESUMED
    assert (chat.dialog["flow"], chat.dialog["waiting"]) == ("order_status", True)
    [status, _] = await chat.texts("A1003")
    assert status.startswith("Order A1003 is delivered")


async def test_a_side_question_inside_a_side_question_comes_back_twice(
        demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("where is my order")
    confirm = await chat.say("forget me")
    assert [b.payload for b in confirm[0].buttons] == ["affirm", "deny"]
    # A question about shipping while asked to confirm: a no, then shipping,
    # then the order question still open underneath.
    replies = await chat.texts("how much is shipping")
    assert replies[0] == "Alright, I'll keep everything as it is."
    assert replies[-2].startswith("Shipping within Germany")
    assert replies[-1] == RESUMED
    assert chat.last is not None and not chat.last.erase_customer


async def test_asking_for_a_person_keeps_the_flow_for_later(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("where is my order")
    await chat.say("talk to a human")
    assert chat.last is not None and chat.last.handoff_reason == "customer asked for a person"
    assert (chat.dialog["flow"], chat.dialog["waiting"]) == ("order_status", True)
    # What a person's "release" asks again: the open question, not the last message.
    assert chat.state.question is not None and chat.state.question.text == ASK


async def test_the_open_question_is_kept_in_the_customers_language(demo: DialogPolicy) -> None:
    chat = Chat(demo, locale="de")
    await chat.say("wo ist meine bestellung")
    await chat.say("bist du ein bot?")
    assert chat.state.question is not None
    assert chat.state.question.text.startswith("Wie lautet deine Bestellnummer")
    await chat.say("A1003")
    assert chat.state.question is None


async def test_cannot_answer_gets_help_not_the_same_reprompt(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("where is my order")
    [help_] = await chat.say("I don't know my order number")
    assert "confirmation email" in help_.text
    assert [b.payload for b in help_.buttons] == ["human", "cancel"]
    assert chat.dialog["waiting"] is True
    [status, _] = await chat.texts("A1003")
    assert status.startswith("Order A1003")


async def test_repeat_says_the_last_messages_again_with_their_buttons(
        demo: DialogPolicy) -> None:
    chat = Chat(demo)
    assert await chat.texts("say that again") == ["I haven't said anything yet. How can I help?"]
    [greeting] = await chat.say("hello")
    [again] = await chat.say("say that again")
    assert (again.text, again.buttons) == (greeting.text, greeting.buttons)
    [again] = await chat.say("sorry?")
    assert again.text == greeting.text


async def test_chitchat_is_answered_without_dropping_the_question(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("where is my order")
    for text, answer in [("are you a bot", "I'm a bot"), ("thanks", "You're welcome!"),
                         ("how are you", "I'm doing well"), ("hi", "Hi there!")]:
        first, second = await chat.texts(text)
        assert first.startswith(answer) and second == RESUMED, text
    [status, _] = await chat.texts("A1003")
    assert status.startswith("Order A1003")


async def test_a_destructive_flow_needs_a_sure_specific_match_and_an_explicit_yes(
        demo: DialogPolicy) -> None:
    for text in ("a text message", "forget it", "text messages", "delete"):
        chat = Chat(demo)
        await chat.say(text)
        assert chat.dialog.get("flow") != "forget_me", text
    for answer in ("sure whatever", "cancel", "hmm", "no"):
        chat = Chat(demo)
        await chat.say("please delete all my data")
        assert chat.dialog["flow"] == "forget_me"
        assert await chat.texts(answer) == ["Alright, I'll keep everything as it is."], answer
        assert chat.last is not None and not chat.last.erase_customer
    chat = Chat(demo)
    await chat.say("forget me")
    await chat.say("Yes, forget me", "affirm")
    assert chat.last is not None and chat.last.erase_customer
    chat = Chat(demo)
    await chat.say("forget me")
    await chat.say("yes")
    assert chat.last is not None and chat.last.erase_customer


CLARIFY = """
intents:
  track_parcel: {title: Track a parcel, examples: [track my parcel, parcel tracking]}
  track_refund: {title: Track a refund, examples: [track my refund, refund tracking]}
responses:
  utter_parcel: {text: "Parcel flow."}
  utter_refund: {text: "Refund flow."}
flows:
  parcel: {triggers: [track_parcel], steps: [{say: utter_parcel}]}
  refund: {triggers: [track_refund], steps: [{say: utter_refund}]}
"""


async def test_two_close_intents_are_asked_about_with_buttons(tmp_path: Path) -> None:
    (tmp_path / "bot.yml").write_text(textwrap.dedent(CLARIFY), encoding="utf-8")
    chat = Chat(build_dialog_policy(Settings(dialogs_dir=str(tmp_path))))
    [question] = await chat.say("tracking")
    assert question.text == "Sorry, I'm not sure what you mean. Which one is it?"
    assert {(b.title, b.payload) for b in question.buttons} == {
        ("Track a parcel", "track_parcel"), ("Track a refund", "track_refund")}
    assert await chat.texts("Track a refund", "track_refund") == ["Refund flow."]
    # A clear message is not asked about.
    assert await chat.texts("track my parcel please") == ["Parcel flow."]


async def test_patterns_can_be_turned_off_and_reworded(tmp_path: Path) -> None:
    demo = Path("dialogs/demo")
    for path in demo.rglob("*.yml"):
        target = tmp_path / path.relative_to(demo)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "repair.yml").write_text(textwrap.dedent("""
        patterns:
          cancel: false
          interruption: false
        responses:
          utter_pattern_how_are_you: {text: "Splendid."}
        """), encoding="utf-8")
    policy = build_dialog_policy(Settings(dialogs_dir=str(tmp_path)))
    chat = Chat(policy)
    await chat.say("where is my order")
    assert await chat.texts("cancel") == [
        "That doesn't look like an order number. Order numbers look like A1001 — please try again."]
    first, second = await chat.texts("how are you")
    assert (first, second) == ("Splendid.", RESUMED)
    hours = await chat.texts("what are your opening hours")
    assert len(hours) == 1 and chat.dialog["flow"] is None  # the question was dropped


async def test_the_language_follows_hints_and_the_customers_words(demo: DialogPolicy) -> None:
    chat = Chat(demo, locale="de-AT")
    [greeting] = await chat.say("hi")
    assert greeting.text.startswith("Hallo") and chat.state.locale == "de"
    assert [b.title for b in greeting.buttons][0] == "Bestellstatus"
    # English words, clearly: English from now on, whatever the channel says.
    [ask] = await chat.texts("where is my order please")
    assert ask == ASK and (chat.state.locale, chat.state.locale_from) == ("en", "text")
    chat.locale = "es"
    await chat.say("A1003")
    assert chat.state.locale == "en"  # a hint does not overrule the customer's words
    # Spanish words switch it again; "ok" or a number change nothing.
    replies = await chat.texts("¿dónde está mi pedido?")
    assert replies == ["¿Cuál es tu número de pedido? Tiene este formato: A1001."] or (
        chat.state.locale == "es")
    await chat.say("A1001")
    assert chat.state.locale == "es"


async def test_a_hint_sets_the_language_until_the_customer_writes_otherwise(
        demo: DialogPolicy) -> None:
    chat = Chat(demo, locale="es-MX")
    await chat.say("A1001")
    assert (chat.state.locale, chat.state.locale_from) == ("es", "hint")
    chat.locale = "de"  # another channel, another hint
    await chat.say("ok")
    assert chat.state.locale == "de"
    chat.locale = "fr"  # a language the bot does not speak: no change
    await chat.say("ok")
    assert chat.state.locale == "de"


async def test_an_action_response_is_said_in_the_customers_language(
        demo: DialogPolicy) -> None:
    chat = Chat(demo, locale="de")
    await chat.say("wo ist meine bestellung")
    [status, _] = await chat.texts("A1003")
    assert "A1003" in status and "Freitag" in status


async def test_a_negated_or_asked_about_erase_never_starts_it(demo: DialogPolicy) -> None:
    for text in ("please do not delete my data", "don't forget me",
                 "I don't want you to delete my data", "why would you delete my data?",
                 "how do I delete my data?", "forget all that",
                 "bitte löscht meine daten nicht", "vergiss alles",
                 "por favor no borren mis datos", "olvida todo"):
        chat = Chat(demo)
        await chat.say(text)
        assert chat.dialog.get("flow") != "forget_me", text


async def test_only_a_plain_yes_or_the_buttons_words_confirm_an_erase(
        demo: DialogPolicy) -> None:
    for shrug in ("ok", "okay", "sure", "yeah", "yep", "of course", "go ahead", "vale",
                  "claro", "y"):
        chat = Chat(demo)
        await chat.say("forget me")
        await chat.say(shrug)
        assert chat.last is not None and not chat.last.erase_customer, shrug
    for yes in ("Yes, forget me", "Ja, vergiss mich", "Sí, olvídame", "yes", "ja", "sí"):
        chat = Chat(demo)
        await chat.say("forget me")
        await chat.say(yes)
        assert chat.last is not None and chat.last.erase_customer, yes


async def test_the_erase_request_again_asks_the_question_again(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    [question] = await chat.say("forget me")
    [again] = await chat.say("forget me")
    assert again.text == question.text and chat.dialog["flow"] == "forget_me"


async def test_small_talk_at_an_erase_question_is_answered_after_the_no(
        demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("forget me")
    keep, answer = await chat.texts("are you a bot?")
    assert keep == "Alright, I'll keep everything as it is." and answer.startswith("I'm a bot")


async def test_a_single_word_example_of_a_destructive_intent_starts_it(
        demo: DialogPolicy) -> None:
    chat = Chat(demo, locale="es")
    await chat.say("olvídame")
    assert chat.dialog["flow"] == "forget_me"


async def test_a_correction_starting_with_sorry_is_a_correction(demo: DialogPolicy) -> None:
    for text in ("sorry, I meant A1002", "sorry, A1002", "pardon, A1002"):
        chat = Chat(demo)
        await chat.say("where is my order A1001")
        replies = await chat.texts(text)
        assert replies[0] == "Got it: A1002 instead of A1001.", text
        assert replies[1].startswith("Order A1002")


async def test_no_thanks_to_anything_else_is_no_misunderstanding(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("where is my order A1001")
    for text in ("no thanks", "no", "ok"):
        [reply] = await chat.texts(text)
        assert not reply.startswith("Sorry, I didn't get that"), text
    assert chat.last is not None and chat.last.handoff_reason is None


async def test_one_word_does_not_change_a_known_language(demo: DialogPolicy) -> None:
    chat = Chat(demo, locale="de")
    await chat.say("hallo")
    for word in ("jaja", "sorry?", "help"):
        await chat.say(word)
        assert chat.state.locale == "de", word
    first = Chat(demo)  # nothing known yet: one clear word is enough
    [greeting] = await first.say("hola")
    assert first.state.locale == "es" and greeting.text.startswith("¡Hola")
