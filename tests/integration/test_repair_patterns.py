"""Conversation repair on the shipped demo bot, end to end (dialogs/README.md):
cancel, correction, a side question and back, "I don't know", "say that
again", small talk, a destructive flow that starts only when meant and acts
only on an explicit yes, and "which of these did you mean?". Each behaviour
runs once on the web chat and once on Telegram (aiogram against the local Bot
API fake), on Segue's real app on loopback and a real Redis."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.chat_customer import CHANNELS, ChatRig, Customer, chat_rig, texts

ASK = "What is your order number? It looks like A1001."
INVALID = ("That doesn't look like an order number. Order numbers look like A1001 — please "
           "try again.")
RESUMED = f"Where we left off: {ASK}"
CANCELLED = "Okay, I've stopped there. What else can I do for you?"
CONFIRM_FORGET = ("This erases your messages and everything we know about you, on every "
                  "channel. Are you sure?")
NOT_FORGOTTEN = "Alright, I'll keep everything as it is."
FORGOTTEN = "Done. Everything we knew about you has been erased. Goodbye!"
OPENING_HOURS = "Our support team is there Monday to Friday from 9:00 to 17:00"
BOT_CHALLENGE = ("I'm a bot, the shop's virtual assistant. If you'd rather talk to a person, "
                 "just say so.")
HANDED_OFF = "Sure, a person from our team will take over this conversation shortly."
BACK_WITH_THE_BOT = "You're back with our assistant. Ask for a person again at any time."
CLARIFY = "Sorry, I'm not sure what you mean. Which one is it?"


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[ChatRig]:
    async with chat_rig(redis_url) as running:
        yield running


@pytest.fixture(params=CHANNELS)
async def customer(rig: ChatRig, request: pytest.FixtureRequest) -> Customer:
    """A new customer of the demo bot, on the web chat, then on Telegram."""
    return await rig.customer(request.param)


async def asked_for_the_number(customer: Customer) -> None:
    assert texts(await customer.say("where is my order")) == [ASK]


async def answered_with_a1003(customer: Customer) -> None:
    status, more = await customer.say("A1003")
    assert status.text.startswith("Order A1003 is delivered."), status
    assert more.payloads == ["order_status", "human"]


# Cancel


async def test_cancel_drops_the_open_question(customer: Customer) -> None:
    await asked_for_the_number(customer)
    assert texts(await customer.say("cancel")) == [CANCELLED]
    # The number comes too late for the dropped question: whatever the bot
    # makes of it, it does not ask for a valid one again.
    after = texts(await customer.say("A1001"))
    assert INVALID not in after and ASK not in after, after


async def test_forget_it_cancels_and_never_asks_to_erase(customer: Customer) -> None:
    await asked_for_the_number(customer)
    assert texts(await customer.say("forget it")) == [CANCELLED]
    after = texts(await customer.say("A1001"))
    assert INVALID not in after and CONFIRM_FORGET not in after, after


# Correction


async def test_a_correction_after_the_answer_redoes_the_lookup(customer: Customer) -> None:
    status, _ = await customer.say("where is my order A1001")
    assert status.text.startswith("Order A1001 is shipped."), status
    corrected = await customer.say("no, I meant A1003")
    assert texts(corrected)[0] == "Got it: A1003 instead of A1001."
    assert texts(corrected)[1].startswith("Order A1003 is delivered."), corrected


async def test_a_correction_inside_the_answer_takes_the_last_number(customer: Customer) -> None:
    await asked_for_the_number(customer)
    status, _ = await customer.say("A1001 — sorry, A1002")
    assert status.text.startswith("Order A1002 is processing."), status


# A side question, and back


async def test_a_side_question_is_answered_then_the_question_asked_again(
    customer: Customer,
) -> None:
    await asked_for_the_number(customer)
    replies = texts(await customer.say("what are your opening hours"))
    assert len(replies) == 2, replies
    assert replies[0].startswith(OPENING_HOURS) and replies[1] == RESUMED, replies
    await answered_with_a1003(customer)


async def released_by_a_person(rig: ChatRig, customer: Customer) -> list[str]:
    """ann claims the chat the customer handed to a person, then releases it:
    what the customer is told when the bot takes over again."""
    ann = await rig.agent("ann")
    held = await customer.customer_id()
    await ann.act(held, "claim")
    [joined] = await customer.notices(1)
    assert "ann from our team has joined the conversation." in joined.text
    await ann.act(held, "release")
    return texts(await customer.notices(2))


# Before a handoff, no probes (`say_expecting`): a release says again the last
# thing the bot said before it.


async def test_after_a_person_releases_the_chat_the_question_is_asked_again(
    rig: ChatRig, customer: Customer,
) -> None:
    assert texts(await customer.say_expecting("where is my order", 1)) == [ASK]
    handed_off, _ = await customer.say_expecting("talk to a human", 2)  # and the queue notice
    assert handed_off.text == HANDED_OFF
    assert await released_by_a_person(rig, customer) == [BACK_WITH_THE_BOT, RESUMED]
    await answered_with_a1003(customer)


async def test_small_talk_before_the_handoff_does_not_change_the_question_asked_again(
    rig: ChatRig, customer: Customer,
) -> None:
    assert texts(await customer.say_expecting("where is my order", 1)) == [ASK]
    assert texts(await customer.say_expecting("are you a bot", 2)) == [BOT_CHALLENGE, RESUMED]
    handed_off, _ = await customer.say_expecting("talk to a human", 2)
    assert handed_off.text == HANDED_OFF
    assert await released_by_a_person(rig, customer) == [BACK_WITH_THE_BOT, RESUMED]
    await answered_with_a1003(customer)


async def test_the_help_then_its_person_button_and_a_release_ask_the_question_again(
    rig: ChatRig, customer: Customer,
) -> None:
    assert texts(await customer.say_expecting("where is my order", 1)) == [ASK]
    [help_text] = await customer.say_expecting("I don't know my order number", 1)
    assert help_text.payloads == ["human", "cancel"]
    assert texts(await customer.press("human"))[0] == HANDED_OFF
    assert await released_by_a_person(rig, customer) == [BACK_WITH_THE_BOT, RESUMED]
    await answered_with_a1003(customer)


# "I don't know"


async def test_cannot_answer_gets_help_and_the_question_stays_open(customer: Customer) -> None:
    await asked_for_the_number(customer)
    [help_text] = await customer.say("I don't know my order number")
    assert "confirmation email" in help_text.text and INVALID not in help_text.text
    assert help_text.payloads == ["human", "cancel"]
    await answered_with_a1003(customer)


# "Say that again"


async def test_say_that_again_repeats_the_last_message_with_its_buttons(
    customer: Customer,
) -> None:
    [greeting] = await customer.say("hello")
    assert greeting.text.startswith("Hi! I'm Segue's demo assistant.")
    assert greeting.payloads == ["order_status", "human"]
    assert await customer.say("say that again") == [greeting]


# Small talk


async def test_small_talk_is_answered_and_the_question_stays_open(customer: Customer) -> None:
    await asked_for_the_number(customer)
    assert texts(await customer.say("are you a bot")) == [BOT_CHALLENGE, RESUMED]
    assert texts(await customer.say("thanks")) == ["You're welcome!", RESUMED]
    await answered_with_a1003(customer)


# Erasing everything: only when meant, only on an explicit yes


async def test_forget_me_starts_only_when_meant_and_erases_only_on_a_plain_yes(
    rig: ChatRig, customer: Customer,
) -> None:
    assert CONFIRM_FORGET not in texts(await customer.say("a text message"))
    [confirm] = await customer.say("forget me")
    assert confirm.text == CONFIRM_FORGET and confirm.payloads == ["affirm", "deny"]
    assert texts(await customer.say("sure whatever")) == [NOT_FORGOTTEN]
    history = await rig.app.segue.store.history(await customer.customer_id(), 100)
    assert "a text message" in [e.text for e in history]


async def test_forget_me_and_the_yes_button_erase_the_customer(
    rig: ChatRig, customer: Customer, redis_client: aioredis.Redis,
) -> None:
    await customer.say("hello")
    erased = await customer.customer_id()
    [confirm] = await customer.say("forget me")
    assert confirm.payloads == ["affirm", "deny"]
    assert texts(await customer.press("affirm")) == [FORGOTTEN]
    left = [k async for k in redis_client.scan_iter(match=f"segue:{{c:{erased}}}:*")]
    # Only the engine's empty "moved" marker may stay, and only for a while.
    assert [k.rsplit(":", 1)[1] for k in left] in ([], ["moved"])
    for key in left:
        assert await redis_client.get(key) == "" and await redis_client.ttl(key) > 0
    assert await rig.app.segue.store.history(erased, 100) == []


# "Which of these did you mean?": two flows whose examples share a word.

TWO_TRACKING_FLOWS = """
intents:
  track_parcel:
    title: Track a parcel
    examples: [track my parcel]
  track_refund:
    title: Track a refund
    examples: [track my refund]
responses:
  utter_parcel: {text: Your parcel is on its way.}
  utter_refund: {text: Your refund is being processed.}
flows:
  track_parcel:
    triggers: [track_parcel]
    steps:
      - say: utter_parcel
  track_refund:
    triggers: [track_refund]
    steps:
      - say: utter_refund
"""


@pytest.fixture(params=CHANNELS)
async def tracking_customer(
    redis_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Customer]:
    """A customer, on each channel, of a bot with two tracking flows."""
    (tmp_path / "bot.yml").write_text(textwrap.dedent(TWO_TRACKING_FLOWS), encoding="utf-8")
    async with chat_rig(redis_url, dialogs_dir=str(tmp_path)) as tracking:
        yield await tracking.customer(request.param)


async def test_a_message_two_flows_fit_equally_asks_which(tracking_customer: Customer) -> None:
    [which] = await tracking_customer.say("track")
    assert which.text == CLARIFY
    assert sorted(which.buttons) == [("Track a parcel", "track_parcel"),
                                     ("Track a refund", "track_refund")]
    assert texts(await tracking_customer.press("track_refund")) == [
        "Your refund is being processed."]
