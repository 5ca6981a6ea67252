"""Linking channels by proof, on the engine with the memory store."""

from __future__ import annotations

import re

from bot.core.model import Address, ChannelIdentity, Inbound
from bot.linking.service import LinkOptions
from context_store import MemoryContextStore
from tests.support.engines import linking_engine
from tests.support.linking_rig import OrderPolicy, Person, Sent, code_in, make


async def test_a_code_from_the_web_joins_telegram_after_a_confirmation() -> None:
    engine, sent = make()
    web = Person(engine, "web", "sess-1", "Dana")
    telegram = Person(engine, "telegram", "5551234", "Dana R")
    assert (await web.say("where is my order"))[0].text == "What's the order number?"
    issued = await web.say("link")
    code = code_in(issued)
    links = {link.title: link.url for link in issued[0].links}
    assert links["Continue on Telegram"].startswith("https://t.me/segue_bot?start=")
    assert links["Continue on the web"].startswith("https://chat.example/webchat/?resume=")

    asked = await telegram.say(f"/link {code}")
    # Named by channel, saying what a yes hands over; a chosen name proves nothing.
    assert "from a web chat conversation" in asked[0].text
    assert "will read this chat, its history and everything written here" in asked[0].text
    assert "Dana" not in asked[0].text
    assert [b.payload for b in asked[0].buttons] == ["link_yes", "link_no"]
    assert await telegram.customer() != await web.customer()

    joined = await telegram.say("Yes, link it", payload="link_yes")
    assert joined[0].text.startswith("Linked!")
    assert joined[1].text == "Where we left off: What's the order number?"
    assert await telegram.customer() == await web.customer()
    # The web side is told, with a way out.
    assert any("Telegram chat (Dana R) joined" in t and "unlink telegram" in t
               for t in sent.texts("web"))
    # The question asked on the web is answered on Telegram.
    assert (await telegram.say("A1001"))[0].text == "Order A1001 has shipped."
    history = await engine.store.history(await web.customer(), 50)
    texts = [e.text for e in history]
    assert texts[0] == "where is my order" and texts[-1] == "Order A1001 has shipped."
    assert {e.channel for e in history} == {"web", "telegram"}


async def test_saying_no_links_nothing_and_the_code_stays_usable() -> None:
    engine, _ = make()
    web, slack = Person(engine, "web", "s"), Person(engine, "slack", "T1:U1")
    code = code_in(await web.say("link"))
    await slack.say(f"link {code}")
    assert (await slack.say("no", payload="link_no"))[0].text == "OK, nothing was linked."
    assert await slack.customer() != await web.customer()


async def test_a_code_is_single_use() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    first, second = Person(engine, "telegram", "1"), Person(engine, "slack", "T:U")
    code = code_in(await web.say("link"))
    await first.say(f"link {code}")
    await first.say("yes", payload="link_yes")
    replies = await second.say(f"link {code}")
    assert "not valid or has expired" in replies[0].text
    assert await second.customer() != await web.customer()


def other_code(code: str) -> str:
    """A well-formed code that is not `code`."""
    return ("2222-2222" if code != "2222-2222" else "3333-3333")


async def test_wrong_codes_make_the_guesser_wait() -> None:
    engine, _ = make(free_wrong_codes=3)
    web, guesser = Person(engine, "web", "s"), Person(engine, "telegram", "666")
    code = code_in(await web.say("link"))
    for _ in range(3):
        assert "not valid" in (await guesser.say(f"link {other_code(code)}"))[0].text
    refused = await guesser.say(f"link {code}")
    assert "Too many wrong link codes" in refused[0].text
    assert not refused[0].buttons


async def test_wrong_codes_from_many_identities_do_not_stop_a_right_code() -> None:
    engine, _ = make()
    code = code_in(await Person(engine, "web", "s").say("link"))
    for n in range(150):
        await Person(engine, "web", f"throwaway-{n}").say(f"link {other_code(code)}")
    asked = await Person(engine, "telegram", "1").say(f"link {code}")
    assert [b.payload for b in asked[0].buttons] == ["link_yes", "link_no"]


async def test_a_telegram_deep_link_joins_once() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s", "Dana")
    await web.say("where is my order")
    issued = await web.say("link")
    start = [link.url for link in issued[0].links if "t.me" in link.url][0]
    token = start.split("start=")[1]
    telegram = Person(engine, "telegram", "42")
    asked = await telegram.say(f"/start {token}")
    assert "You opened a link that comes from a web chat conversation" in asked[0].text
    # Nothing is joined before the person says yes.
    assert await telegram.customer() != await web.customer()
    welcome = await telegram.say("yes")
    assert "continues your web chat conversation" in welcome[0].text
    assert welcome[1].text == "Where we left off: What's the order number?"
    assert await telegram.customer() == await web.customer()
    other = Person(engine, "telegram", "43")
    assert "used already" in (await other.say(f"/start {token}"))[0].text
    assert await other.customer() != await web.customer()


async def test_a_forged_deep_link_is_refused() -> None:
    engine, _ = make()
    telegram = Person(engine, "telegram", "42")
    assert "not a valid link" in (await telegram.say("/start forged.token.value"))[0].text


async def test_channels_lists_and_unlink_detaches() -> None:
    engine, _ = make()
    web, telegram = Person(engine, "web", "s"), Person(engine, "telegram", "7")
    code = code_in(await web.say("link"))
    await telegram.say(f"link {code}")
    await telegram.say("yes", payload="link_yes")
    listed = (await web.say("channels"))[0].text
    assert "Telegram" in listed and "web chat" in listed
    assert "no longer linked" in (await web.say("unlink telegram"))[0].text
    assert await telegram.customer() != await web.customer()
    assert "No Telegram chat is linked" in (await web.say("unlink telegram"))[0].text


async def test_two_workers_racing_for_one_code_exactly_one_wins(redis_url: str) -> None:
    import asyncio

    from context_store import RedisContextStore

    store_a, store_b = RedisContextStore.from_url(redis_url), RedisContextStore.from_url(redis_url)
    worker_a, _ = make(store_a)
    worker_b, _ = make(store_b)
    web = Person(worker_a, "web", "s")
    code = code_in(await web.say("link"))
    tg, slack = Person(worker_a, "telegram", "1"), Person(worker_b, "slack", "T:U")
    await tg.say(f"link {code}")
    await slack.say(f"link {code}")
    results = await asyncio.gather(tg.say("yes", payload="link_yes"),
                                   slack.say("yes", payload="link_yes"))
    wins = [r for r in results if r[0].text.startswith("Linked!")]
    assert len(wins) == 1
    owner = await web.customer()
    joined = [await p.customer() == owner for p in (tg, slack)]
    assert joined.count(True) == 1
    await store_a.close()
    await store_b.close()


async def test_unlink_takes_effect_on_a_worker_that_cached_the_identity() -> None:
    store = MemoryContextStore()
    worker_a, _ = make(store)
    worker_b, _ = make(store)
    victim = Person(worker_b, "web", "victim")
    code = code_in(await victim.say("link"))
    intruder = Person(worker_a, "telegram", "666")
    await intruder.say(f"link {code}")
    await intruder.say("yes", payload="link_yes")
    assert await intruder.customer() == await victim.customer()
    assert "no longer linked" in (await victim.say("unlink telegram"))[0].text
    # worker_a still caches telegram:666 -> the victim; the store corrects it.
    await intruder.say("what did they say?")
    owner = await victim.customer()
    assert await worker_a.customer_of(ChannelIdentity("telegram", "666")) != owner
    texts = [e.text for e in await store.history(owner, 50)]
    assert "what did they say?" not in texts
    assert ChannelIdentity("telegram", "666") not in await store.identities(owner)


async def test_a_deep_link_fits_telegram_and_revokes_its_code() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    issued = await web.say("link")
    code = code_in(issued)
    start = [link.url for link in issued[0].links if "t.me" in link.url][0]
    token = start.split("start=")[1]
    assert len(token) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    await Person(engine, "telegram", "1").say(f"/start {token}")
    refused = await Person(engine, "slack", "T:U").say(f"link {code}")
    assert "not valid or has expired" in refused[0].text


async def test_a_used_code_revokes_its_deep_link() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    issued = await web.say("link")
    token = [link.url for link in issued[0].links if "t.me" in link.url][0].split("start=")[1]
    slack = Person(engine, "slack", "T:U")
    await slack.say(f"link {code_in(issued)}")
    await slack.say("yes", payload="link_yes")
    late = await Person(engine, "telegram", "9").say(f"/start {token}")
    assert "expired or has been used" in late[0].text


async def test_an_answer_that_is_not_yes_or_no_asks_again() -> None:
    engine, _ = make()
    web, telegram = Person(engine, "web", "s", "Dana"), Person(engine, "telegram", "3")
    code = code_in(await web.say("link"))
    await telegram.say(f"link {code}")
    again = await telegram.say("maybe")
    assert again[0].text.startswith("Please answer yes or no.")
    assert [b.payload for b in again[0].buttons] == ["link_yes", "link_no"]
    assert (await telegram.say("yes"))[0].text.startswith("Linked!")
    assert await telegram.customer() == await web.customer()


async def test_links_offered_depend_on_where_the_customer_is() -> None:
    engine, _ = make()
    from_telegram = await Person(engine, "telegram", "5").say("link")
    titles = [link.title for link in from_telegram[0].links]
    assert titles == ["Continue on the web"]  # no Telegram link inside Telegram
    store = MemoryContextStore()
    sent = Sent()
    bare, _ = linking_engine(store, OrderPolicy(), {"slack": sent}, LinkOptions(secret="s"))
    from_slack = await Person(bare, "slack", "T:U").say("link")
    # Without a public URL a web link would be relative: useless outside the web chat.
    assert from_slack[0].links == ()


async def test_a_code_of_an_erased_conversation_links_nothing() -> None:
    engine, _ = make()
    web, telegram = Person(engine, "web", "s"), Person(engine, "telegram", "8")
    code = code_in(await web.say("link"))
    await telegram.say(f"link {code}")
    await engine.store.erase(await web.customer())
    # The question went with the conversation it quoted, and the code too.
    assert (await telegram.say("yes", payload="link_yes"))[0].text == "ok"
    refused = await telegram.say(f"link {code}")
    assert "not valid or has expired" in refused[0].text
    assert (await telegram.say("hello"))[0].text == "ok"


async def test_the_issuing_side_is_told_a_web_chat_joined_in_plain_words() -> None:
    engine, sent = make()
    telegram, web = Person(engine, "telegram", "77"), Person(engine, "web", "s-77")
    code = code_in(await telegram.say("link"))
    await web.say(f"link {code}")
    await web.say("yes", payload="link_yes")
    assert any(t.startswith("A web chat joined this conversation.") for t in sent.texts("telegram"))


async def test_two_web_sessions_of_one_customer_may_send_the_same_message_id() -> None:
    # Web chat message ids are chosen by each client: two sessions joined
    # into one customer can both send "1", and both messages count.
    engine, _ = make()
    first, second = Person(engine, "web", "sess-a"), Person(engine, "web", "sess-b")
    code = code_in(await first.say("link"))
    await second.say(f"link {code}")
    assert (await second.say("yes", payload="link_yes"))[0].text.startswith("Linked!")
    customer = await first.customer()
    assert await second.customer() == customer
    turns = [await engine.handle(Inbound(
        identity=ChannelIdentity("web", session), address=Address("web", session),
        message_id="1", text=f"from {session}",
    )) for session in ("sess-a", "sess-b")]
    assert [(t.customer_id, t.duplicate) for t in turns] == [(customer, False)] * 2
    texts = [e.text for e in await engine.store.history(customer, 50)]
    assert "from sess-a" in texts and "from sess-b" in texts


async def test_a_web_chat_joining_from_another_browser_is_told_to_the_issuer() -> None:
    engine, sent = make()
    laptop, phone = Person(engine, "web", "laptop"), Person(engine, "web", "phone")
    code = code_in(await laptop.say("link"))
    await phone.say(f"link {code}")
    await phone.say("yes", payload="link_yes")
    assert any(t.startswith("A web chat joined this conversation.") and "unlink web" in t
               for t in sent.texts("web"))
