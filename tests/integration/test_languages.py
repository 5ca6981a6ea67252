"""The demo bot answers in the customer's language, end to end: the language
the channel says (the web chat hello's `locale`, Telegram's `language_code`)
until the customer's own words say otherwise, and the language a customer
wrote in follows them to a channel they link. Segue's real app on loopback,
the web chat and Telegram (aiogram against the local Bot API fake), a real
Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.channels_rig import link_code
from tests.support.chat_customer import ChatRig, Customer, Reply, chat_rig, texts

GERMAN_GREETING = "Hallo! Ich bin der Demo-Assistent von Segue."
SPANISH_GREETING = "¡Hola! Soy el asistente de demostración de Segue."
ASK = "What is your order number? It looks like A1001."
GERMAN_ASK = "Wie lautet deine Bestellnummer? Sie sieht aus wie A1001."
GERMAN_RESUME = "Weiter, wo wir stehen geblieben sind: "


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[ChatRig]:
    async with chat_rig(redis_url) as running:
        yield running


async def test_a_german_browser_is_greeted_in_german(rig: ChatRig) -> None:
    customer = await rig.customer("web", locale="de")
    [greeting] = await customer.say("hallo")
    assert greeting.text.startswith(GERMAN_GREETING), greeting
    assert greeting.payloads == ["order_status", "human"]


async def test_a_spanish_telegram_user_is_greeted_in_spanish(rig: ChatRig) -> None:
    customer = await rig.customer("telegram", locale="es")
    [greeting] = await customer.say("hola")
    assert greeting.text.startswith(SPANISH_GREETING), greeting


async def test_english_words_win_over_a_german_browser(rig: ChatRig) -> None:
    customer = await rig.customer("web", locale="de")
    assert texts(await customer.say("where is my order please")) == [ASK]


async def linked_from_german_web(rig: ChatRig) -> tuple[Customer, list[Reply]]:
    """A customer asked for their order number in German on the web, who then
    links their Telegram, which says they use English: their Telegram chat,
    and what it was told once linked."""
    web = await rig.customer("web")
    # No probes on the web: joining asks again the last thing the bot said.
    assert texts(await web.say_expecting("wo ist meine bestellung?", 1)) == [GERMAN_ASK]
    [issued] = await web.say_expecting("link", 1)
    telegram = await rig.customer("telegram", locale="en")
    await telegram.say_expecting(f"link {link_code(issued.text)}", 1)
    return telegram, await telegram.say("yes")


async def test_the_language_written_in_follows_the_customer_to_telegram(rig: ChatRig) -> None:
    telegram, _ = await linked_from_german_web(rig)
    status, _ = await telegram.say("A1003")
    assert status.text.startswith("Bestellung A1003 ist zugestellt."), status


async def test_the_question_asked_again_on_the_linked_channel_is_all_german(
    rig: ChatRig,
) -> None:
    _, linked = await linked_from_german_web(rig)
    assert texts(linked)[-1] == f"{GERMAN_RESUME}{GERMAN_ASK}", texts(linked)
