"""A handed-off conversation in the customer's language, end to end: "forget
me" while a person holds the chat erases only on an explicit yes, and any
other message drops the question (and still reaches the agent); a release
asks again the question the flow keeps open, once prefixed; a chat joining a
conversation picks up the question it waits for now; the agent's view and a
customer's export carry the conversation's language and open question.

Segue's real app on loopback with the demo bot, a real Redis, the agent API
and its live socket; the web chat, and Telegram through the local Bot API
fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.core.conversation import ConversationState
from tests.support.channels_rig import link_code
from tests.support.chat_customer import CHANNELS, ChatRig, Customer, chat_rig, texts
from tests.support.handoff_rig import AgentClient
from tests.support.privacy_rig import segue_customers

GREETING = "Hallo! Ich bin der Demo-Assistent von Segue."
ASK = "Wie lautet deine Bestellnummer? Sie sieht aus wie A1001."
AGAIN = "Weiter, wo wir stehen geblieben sind: "
HANDED_OFF = "Jemand aus unserem Team übernimmt dieses Gespräch in Kürze."
BACK = ("Du bist wieder bei unserem Assistenten. Du kannst jederzeit wieder nach einem "
        "Menschen fragen.")
CONFIRM_ERASE = ("Damit werden deine Nachrichten und alles, was wir über dich wissen, auf allen "
                 "Kanälen gelöscht, und dein Gespräch mit unserem Team endet. Bist du sicher?")
KEPT = "Alles klar, es wurde nichts gelöscht. Unser Team ist weiter für dich da."
ERASED = "Erledigt: Alles, was wir über dich wussten, ist auf allen Kanälen gelöscht."


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[ChatRig]:
    async with chat_rig(redis_url) as running:
        yield running


async def german(rig: ChatRig, channel: str) -> Customer:
    """A customer greeted in German on `channel`."""
    customer = await rig.customer(channel, locale="de")
    [greeting] = await customer.say("hallo")
    assert greeting.text.startswith(GREETING), greeting
    return customer


async def held_by_ann(rig: ChatRig, customer: Customer) -> AgentClient:
    """`customer` asks for a person and ann, her console open, takes the chat."""
    assert texts(await customer.say_expecting("/agent", 2))[0] == HANDED_OFF
    ann = await (await rig.agent("ann")).listen()
    await ann.act(await customer.customer_id(), "claim")
    [joined] = await customer.notices(1)
    assert joined.text == "ann aus unserem Team ist dem Gespräch beigetreten."
    return ann


async def state_of(rig: ChatRig, customer: Customer) -> ConversationState | None:
    raw = await rig.app.segue.store.load_state(await customer.customer_id())
    return ConversationState.from_json(raw) if raw is not None else None


# Erasing while a person holds the chat


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_yes_for_the_agent_after_another_message_erases_nothing(
    rig: ChatRig, channel: str,
) -> None:
    customer = await german(rig, channel)
    ann = await held_by_ann(rig, customer)
    [confirm] = await customer.say("vergiss mich")
    assert confirm.text == CONFIRM_ERASE
    assert [title for title, _ in confirm.buttons] == ["Ja, vergiss mich", "Nein"]

    # The customer goes on talking to the agent: the question is dropped, they
    # are told so, and the agent reads the message.
    question = "Moment, kannst du mir sagen, wann mein Paket kommt?"
    assert texts(await customer.say(question)) == [KEPT]
    await ann.event("message", text=question)
    kept = await ann.event("message", text=KEPT)
    assert kept["entry"]["sender"] == "bot"

    # A yes now answers the agent, not the question: silence, and nothing erased.
    assert await customer.say("ja") == []
    await ann.event("message", text="ja")
    state = await state_of(rig, customer)
    assert state is not None and state.handoff is not None
    assert (state.handoff.status, state.handoff.confirm_erase) == ("claimed", False)
    view = await ann.conversation(await customer.customer_id())
    said = [e["text"] for e in view["history"] if e["sender"] == "customer"]
    assert said[-4:] == [question, "channels", "ja", "channels"]  # each with its probe
    await ann.close()


async def test_only_a_plain_yes_or_the_buttons_words_erase(rig: ChatRig) -> None:
    customer = await german(rig, "web")
    ann = await held_by_ann(rig, customer)
    for shrug in ("ok", "vale", "klar"):
        assert texts(await customer.say("vergiss mich")) == [CONFIRM_ERASE]
        assert texts(await customer.say(shrug)) == [KEPT]
    assert await state_of(rig, customer) is not None
    assert texts(await customer.say("vergiss mich")) == [CONFIRM_ERASE]
    assert texts(await customer.say("Ja, vergiss mich!")) == [ERASED]
    assert await state_of(rig, customer) is None
    await ann.close()


# Picking the conversation up again


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_release_asks_the_open_question_again_once_prefixed_in_german(
    rig: ChatRig, channel: str,
) -> None:
    customer = await rig.customer(channel, locale="de")
    # No probes before the handoff: they would be the bot's last words.
    assert texts(await customer.say_expecting("wo ist meine bestellung?", 1)) == [ASK]
    challenged = texts(await customer.say_expecting("bist du ein bot?", 2))
    assert challenged[1] == AGAIN + ASK, challenged
    ann = await held_by_ann(rig, customer)
    await ann.act(await customer.customer_id(), "release")
    assert texts(await customer.notices(2)) == [BACK, AGAIN + ASK]
    status, _ = await customer.say("A1003")
    assert status.text.startswith("Bestellung A1003 ist zugestellt."), status
    await ann.close()


async def test_a_close_forgets_the_open_question(rig: ChatRig) -> None:
    customer = await rig.customer("web", locale="de")
    assert texts(await customer.say_expecting("wo ist meine bestellung?", 1)) == [ASK]
    ann = await held_by_ann(rig, customer)
    await ann.act(await customer.customer_id(), "close")
    await customer.notices(1)
    state = await state_of(rig, customer)
    assert state is not None and (state.dialog, state.question) == ({}, None)
    await ann.close()


async def test_a_joining_chat_picks_up_the_question_open_now(rig: ChatRig) -> None:
    """The conversation moved on after its link code was made: the chat that
    joins is asked what the conversation waits for now, once prefixed."""
    issuer = await german(rig, "web")
    [issued] = await issuer.say("link")
    assert texts(await issuer.say("wo ist meine bestellung?")) == [ASK]
    joining = await rig.customer("web", locale="de")
    await joining.say_expecting(f"link {link_code(issued.text)}", 1)
    linked, again = await joining.say_expecting("ja", 2)
    assert linked.text == "Verknüpft! Dieser Chat setzt jetzt dein Web-Chat-Gespräch fort."
    assert again.text == AGAIN + ASK
    status, _ = await joining.say("A1001")
    assert status.text.startswith("Bestellung A1001 ist versandt."), status


# What agents and exports show


async def test_the_agents_view_and_the_export_carry_the_language_and_open_question(
    rig: ChatRig, redis_url: str,
) -> None:
    customer = await rig.customer("web", locale="de")
    assert texts(await customer.say("wo ist meine bestellung?")) == [ASK]
    customer_id = await customer.customer_id()
    ann = await rig.agent("ann")
    assert (await ann.conversation(customer_id))["locale"] == "de"

    root = await rig.agent("root")
    status, document = await root.call("GET", f"customers/{customer_id}/export")
    assert status == 200, document
    conversation = document["conversation"]
    assert (conversation["locale"], conversation["locale_from"]) == ("de", "text")
    assert conversation["question"]["text"] == ASK
    assert conversation["question"]["sender"] == "bot"
    ran = await segue_customers("export", customer_id, redis_url=redis_url)
    assert ran.status == 0, ran.err
    assert json.loads(ran.out) == document
