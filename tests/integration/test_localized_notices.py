"""What Segue itself tells a customer (the handoff notices, the "where we
left off" of a released conversation, the linking answers) is in the
conversation's language, as the dialogs' replies are; an English
conversation reads today's English.

Real app on loopback with the demo bot, real Redis, the agent API; web
chats whose hello names the visitor's language, and a Telegram chat (through
the local Bot API fake) whose stored conversation is in Spanish."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.core.conversation import ConversationState
from bot.core.model import ChannelIdentity, HistoryEntry
from tests.fakes.telegram_api import CUSTOMER
from tests.support.app_server import RunningApp
from tests.support.channels_rig import ChannelsRig, link_code
from tests.support.handoff_rig import AgentClient, agent, agent_frame
from tests.support.webchat_client import WebChatClient


async def german_customer(http: aiohttp.ClientSession, app: RunningApp) -> WebChatClient:
    """A web chat whose browser says German, greeted in German."""
    client = await WebChatClient.connect(http, app.ws_url, locale="de")
    [greeting] = await client.turn("hallo")
    assert greeting["text"].startswith("Hallo! Ich bin der Demo-Assistent"), greeting
    return client


def texts(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["text"] for frame in frames]


async def released(client: WebChatClient, holder: AgentClient) -> list[str]:
    """What the customer is told once `holder` hands the conversation back
    with an open question: back with the bot, and the question again."""
    await holder.act(client.customer or "", "release")
    return [(await client.next_message())["text"], (await client.next_message())["text"]]


async def test_a_german_conversation_is_handed_off_and_back_in_german(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    ann = await (await agent(http, desk_app, "ann")).listen()
    bob = await agent(http, desk_app, "bob")
    client = await german_customer(http, desk_app)
    [question] = await client.turn("wo ist meine Bestellung")
    assert question["text"].startswith("Wie lautet deine Bestellnummer?")

    assert texts(await client.turn("/agent", expect=2)) == [
        "Jemand aus unserem Team übernimmt dieses Gespräch in Kürze.",
        "Du bist als Nächstes dran."]
    customer = client.customer or ""
    await ann.act(customer, "claim")
    assert (await agent_frame(client))["text"] == \
        "ann aus unserem Team ist dem Gespräch beigetreten."
    await ann.act(customer, "transfer", {"agent": "bob"})
    assert (await agent_frame(client))["text"] == \
        "bob aus unserem Team übernimmt jetzt dieses Gespräch."

    assert await released(client, bob) == [
        "Du bist wieder bei unserem Assistenten. Du kannst jederzeit wieder nach einem "
        "Menschen fragen.",
        f"Weiter, wo wir stehen geblieben sind: {question['text']}"]
    [status] = await client.turn("A1001")
    assert status["text"].startswith("Bestellung A1001 ist versandt."), status
    for closing in (client, ann, bob):
        await closing.close()


async def test_an_english_conversation_reads_todays_notices(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    ann = await (await agent(http, desk_app, "ann")).listen()
    bob = await agent(http, desk_app, "bob")
    client = await WebChatClient.connect(http, desk_app.ws_url, locale="en-GB")
    [question] = await client.turn("where is my order")

    assert texts(await client.turn("/agent", expect=2)) == [
        "A person from our team will take over this conversation shortly.",
        "You're next in line."]
    customer = client.customer or ""
    await ann.act(customer, "claim")
    assert (await agent_frame(client))["text"] == \
        "ann from our team has joined the conversation."
    await ann.act(customer, "transfer", {"agent": "bob"})
    assert (await agent_frame(client))["text"] == \
        "bob from our team is taking over this conversation."

    assert await released(client, bob) == [
        "You're back with our assistant. Ask for a person again at any time.",
        f"Where we left off: {question['text']}"]
    for closing in (client, ann, bob):
        await closing.close()


async def test_erasing_and_closing_during_a_handoff_are_told_in_german(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await german_customer(http, desk_app)
    # Asked for by the dialog: its own German words, then the desk's notice.
    said, notice = await client.turn("ich möchte mit einem Menschen sprechen", expect=2)
    assert said["text"].startswith("Klar, jemand aus unserem Team")
    assert notice["text"].startswith("Gerade ist niemand aus unserem Team online. Unser Team "
                                     "ist zu diesen Zeiten erreichbar: Mon-Fri 9-17 CET.")
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    await ann.act(customer, "claim")
    await agent_frame(client)

    [confirm] = await client.turn("vergiss mich")
    assert confirm["text"].endswith("Bist du sicher?")
    assert [b["title"] for b in confirm["buttons"]] == ["Ja, vergiss mich", "Nein"]
    assert texts(await client.turn("nein")) == [
        "Alles klar, es wurde nichts gelöscht. Unser Team ist weiter für dich da."]

    await ann.act(customer, "close")
    assert (await client.next_message())["text"] == (
        "ann hat dieses Gespräch beendet. Schreib jederzeit hier, wenn du noch etwas brauchst.")
    await client.close()


async def test_a_german_yes_erases_during_a_handoff(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await german_customer(http, desk_app)
    await client.turn("/agent", expect=2)
    [confirm] = await client.turn("lösche meine Daten")
    assert confirm["text"].startswith("Damit werden deine Nachrichten")
    assert texts(await client.turn("Ja!")) == [
        "Erledigt: Alles, was wir über dich wussten, ist auf allen Kanälen gelöscht."]
    assert await desk_app.segue.store.load_state(client.customer or "") is None
    await client.close()


async def test_a_conversation_stored_in_spanish_is_told_in_spanish_on_telegram(
    channels: ChannelsRig,
) -> None:
    """The stored conversation's language counts, whatever the channel says
    (this Telegram user's app is in English)."""
    identity = ChannelIdentity("telegram", str(CUSTOMER["id"]))
    await channels.telegram_says("hi")
    await channels.telegram_sent(1)
    customer = await channels.customer_of(identity)

    async def in_spanish(state: ConversationState) -> list[HistoryEntry]:
        state.locale, state.locale_from = "es", "text"
        return []

    await channels.segue.engine.locks.change(customer, in_spanish)
    await channels.telegram_says("/agent")
    assert (await channels.telegram_sent(3))[1:] == [
        "Una persona de nuestro equipo se hará cargo de esta conversación en breve.",
        "Ahora mismo no hay nadie de nuestro equipo conectado. Nuestro equipo está disponible "
        "en este horario: Mon-Fri 9-17 CET. Deja tu mensaje aquí y una persona te responderá "
        "en cuanto vuelva."]
    ann = await channels.agent("ann")
    await ann.act(customer, "claim")
    await ann.act(customer, "release")
    assert (await channels.telegram_sent(5))[3:] == [
        "ann, de nuestro equipo, se ha unido a la conversación.",
        "Vuelves a estar con nuestro asistente. Puedes pedir hablar con una persona de nuevo "
        "cuando quieras."]


async def test_linking_two_german_chats_is_asked_and_told_in_german(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    issuer = await german_customer(http, desk_app)
    [issued] = await issuer.turn("link")
    code = link_code(issued["text"])
    assert issued["text"].startswith(f"Dein Link-Code ist {code}. Schick innerhalb von 10 "
                                     f"Minuten „link {code}“ vom anderen Kanal (Web-Chat, "
                                     "Telegram oder Slack)")
    assert [link["title"] for link in issued["links"]] == ["Im Web weitermachen"]

    joining = await german_customer(http, desk_app)
    [question] = await joining.turn(f"link {code}")
    assert question["text"].startswith("Dieser Code stammt aus einem Web-Chat-Gespräch. Wenn "
                                       "du Ja sagst")
    assert [b["title"] for b in question["buttons"]] == ["Ja, verknüpfen",
                                                         "Nein, nicht verknüpfen"]
    # Typed in German, the answer counts as the button would.
    linked, where = await joining.turn("ja", expect=2)
    assert linked["text"] == "Verknüpft! Dieser Chat setzt jetzt dein Web-Chat-Gespräch fort."
    assert where["text"].startswith("Weiter, wo wir stehen geblieben sind: Hallo! Ich bin")
    told = await issuer.next_message()
    assert told["text"] == ("Ein Web-Chat ist diesem Gespräch beigetreten. Wenn du das nicht "
                            "warst, schick „unlink web“.")
    [linked_with] = await joining.turn("channels")
    assert linked_with["text"] == ("Dieses Gespräch ist verknüpft mit: Web-Chat. Schick "
                                   "„unlink <Kanal>“ (web, telegram oder slack), um einen "
                                   "davon zu entfernen.")
    await issuer.close()
    await joining.close()


async def test_a_chat_joining_a_german_conversation_goes_on_in_german(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    issuer = await german_customer(http, desk_app)
    [question] = await issuer.turn("wo ist meine Bestellung")
    [issued] = await issuer.turn("link")
    joining = await WebChatClient.connect(http, desk_app.ws_url, locale="en")
    [asked] = await joining.turn(f"link {link_code(issued['text'])}")
    # Asked in its own language: nothing has joined yet.
    assert asked["text"].startswith("That code comes from a web chat conversation.")
    assert texts(await joining.turn("yes", expect=2)) == [
        "Verknüpft! Dieser Chat setzt jetzt dein Web-Chat-Gespräch fort.",
        f"Weiter, wo wir stehen geblieben sind: {question['text']}"]
    await issuer.close()
    await joining.close()
