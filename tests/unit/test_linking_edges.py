"""Linking at its edges: typed answers, revoked links, the wrong-code delays,
what a join leaves behind, and the exact words of `channels` and `unlink`."""

from __future__ import annotations

import orjson
import pytest

import bot.linking.service
from bot.core.conversation import ConversationState
from bot.core.engine import Engine
from bot.core.model import Button, ChannelIdentity, Outbound
from bot.core.policy import TurnContext
from bot.linking.codes import normalised_code
from bot.linking.service import LinkOptions
from context_store import MemoryContextStore
from tests.support.engines import linking_engine
from tests.support.linking_rig import OrderPolicy, Person, Sent, code_in, make


def start_token(issued: list[Outbound]) -> str:
    return [link.url for link in issued[0].links if "t.me" in link.url][0].split("start=")[1]


async def test_answers_may_be_typed_and_a_typed_no_links_nothing() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    code = code_in(await web.say("link"))
    telegram = Person(engine, "telegram", "1")
    await telegram.say(f"link {code}")
    assert (await telegram.say("no"))[0].text == "OK, nothing was linked."
    assert await telegram.customer() != await web.customer()
    # The title of the "no" button, sent as text, means no as well.
    slack = Person(engine, "slack", "T:U")
    asked = await slack.say(f"link {code}")
    no_button = [b for b in asked[0].buttons if b.payload == "link_no"][0]
    assert (await slack.say(no_button.title))[0].text == "OK, nothing was linked."
    assert await slack.customer() != await web.customer()
    # Punctuation around a typed yes does not matter.
    await slack.say(f"link {code}")
    assert (await slack.say("Yes!"))[0].text.startswith("Linked!")
    assert await slack.customer() == await web.customer()


async def test_the_first_question_is_asked_without_a_reminder() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    issued = await web.say("link")
    asked = await Person(engine, "telegram", "1").say(f"link {code_in(issued)}")
    assert asked[0].text.startswith("That code comes from a web chat conversation.")
    issued = await web.say("link")
    opened = await Person(engine, "telegram", "2").say(f"/start {start_token(issued)}")
    assert opened[0].text.startswith("You opened a link that comes from a web chat conversation.")


async def test_a_new_code_revokes_the_deep_link_issued_with_the_last_one() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    first = await web.say("link")
    second = await web.say("link")
    late = await Person(engine, "telegram", "1").say(f"/start {start_token(first)}")
    assert "expired or has been used" in late[0].text
    refused = await Person(engine, "slack", "T:U").say(f"link {code_in(first)}")
    assert "not valid or has expired" in refused[0].text
    fresh = await Person(engine, "telegram", "2").say(f"/start {start_token(second)}")
    assert fresh[0].text.startswith("You opened a link")


async def test_the_code_message_says_how_many_minutes_it_lasts() -> None:
    engine, _ = make()
    issued = await Person(engine, "web", "s").say("link")
    assert "Within 10 minutes, send" in issued[0].text
    engine, _ = make(code_ttl_seconds=900)
    issued = await Person(engine, "web", "s").say("link")
    assert "Within 15 minutes, send" in issued[0].text


async def test_a_public_url_with_a_trailing_slash_makes_a_clean_web_link() -> None:
    store = MemoryContextStore()
    engine, _ = linking_engine(store, OrderPolicy(), {"telegram": Sent()}, LinkOptions(
        secret="s", public_url="https://help.example/chatX/"))
    issued = await Person(engine, "telegram", "1").say("link")
    [link] = issued[0].links
    assert link.url.startswith("https://help.example/chatX/webchat/?resume=")


async def test_inside_the_web_chat_without_a_public_url_the_web_link_is_relative() -> None:
    store = MemoryContextStore()
    engine, _ = linking_engine(store, OrderPolicy(), {"web": Sent()}, LinkOptions(secret="s"))
    issued = await Person(engine, "web", "s").say("link")
    [link] = issued[0].links
    assert link.url.startswith("/webchat/?resume=")


async def test_a_chat_using_its_own_code_or_link_is_told_it_is_already_joined() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    issued = await web.say("link")
    own = await web.say(f"link {code_in(issued)}")
    assert own[0].text == "This chat is already part of that conversation."
    telegram = Person(engine, "telegram", "1")
    issued = await telegram.say("link")
    token = issued[0].links[0].url.split("resume=")[1]
    own = await telegram.say(f"/start {token}")
    assert own[0].text == "This chat is already part of that conversation."


async def test_wrong_codes_wait_doubles_from_the_first_delay_and_the_cap_waits_the_window() -> None:
    now = [1000.0]
    store = MemoryContextStore(clock=lambda: now[0])
    engine, _ = make(store, free_wrong_codes=3, first_delay_seconds=1, max_delay_seconds=4,
                     wrong_codes_per_identity=10, wrong_codes_window_seconds=900,
                     code_ttl_seconds=3600)
    code = code_in(await Person(engine, "web", "s").say("link"))
    wrong = "2222-2222" if code != "2222-2222" else "3333-3333"
    guesser = Person(engine, "telegram", "666")

    async def waits() -> bool:
        """Probes with the right code, which never counts as wrong."""
        reply = (await guesser.say(f"link {code}"))[0].text
        return reply.startswith("Too many wrong link codes")

    async def guess_wrong() -> None:
        assert "not valid" in (await guesser.say(f"link {wrong}"))[0].text

    for _ in range(2):
        await guess_wrong()
    assert not await waits()
    await guess_wrong()  # the third: waits the first delay
    assert await waits()
    now[0] += 1.1
    assert not await waits()
    await guess_wrong()  # the fourth: twice as long
    now[0] += 1.9
    assert await waits()
    now[0] += 0.2
    assert not await waits()
    for expected in (4, 4, 4, 4, 4):  # capped at the longest delay
        await guess_wrong()
        now[0] += expected - 0.1
        assert await waits()
        now[0] += 0.2
        assert not await waits()
    await guess_wrong()  # the tenth: the whole window
    now[0] += 899
    assert await waits()
    now[0] += 1.1
    assert not await waits()


async def test_yes_after_someone_else_used_the_code_links_nothing() -> None:
    engine, _ = make()
    web = Person(engine, "web", "s")
    code = code_in(await web.say("link"))
    telegram, slack = Person(engine, "telegram", "1"), Person(engine, "slack", "T:U")
    await telegram.say(f"link {code}")
    await slack.say(f"link {code}")
    assert (await telegram.say("yes"))[0].text.startswith("Linked!")
    late = await slack.say("yes")
    assert late[0].text.startswith("That code has expired or was used already.")
    assert await slack.customer() != await web.customer()


async def test_a_pending_code_question_saved_without_its_kind_is_still_a_code() -> None:
    store = MemoryContextStore()
    engine, _ = make(store)
    web, telegram = Person(engine, "web", "s"), Person(engine, "telegram", "1")
    code = code_in(await web.say("link"))
    await telegram.say("hello")
    customer = await telegram.customer()
    loaded = await store.lock_and_load(customer, token="t", ttl_seconds=30, message_key=None)
    assert loaded.locked
    # As an older version saved it: no "ask" in the pending offer.
    saved = orjson.loads(ConversationState.from_json(loaded.state).to_json())
    saved["pending_link"] = {"code": normalised_code(code), "customer": await web.customer(),
                             "channel": "web", "resume": None}
    assert await store.save_and_unlock(customer, token="t", state=orjson.dumps(saved).decode(),
                                       entries=[], message_key=None, identity=None)
    again = await telegram.say("maybe")
    assert again[0].text.startswith("Please answer yes or no. That code comes from a web chat")
    assert (await telegram.say("yes"))[0].text.startswith("Linked!")
    # The code was used up by that yes.
    refused = await Person(engine, "slack", "T:U").say(f"link {code}")
    assert "not valid or has expired" in refused[0].text


class ButtonsPolicy:
    """Asks with buttons; says nothing to a thank-you."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        if turn.inbound.text == "where is my order":
            return [Outbound(text="Which order?", buttons=(
                Button("A1001", "order:A1001"), Button("A1002", "order:A1002")))]
        return []


async def test_the_joining_chat_picks_up_the_last_bot_message_with_its_buttons() -> None:
    store = MemoryContextStore()
    engine, _ = linking_engine(store, ButtonsPolicy(), {c: Sent() for c in ("web", "telegram")},
                               LinkOptions(secret="s"))
    web, telegram = Person(engine, "web", "s"), Person(engine, "telegram", "1")
    await web.say("where is my order")
    assert await web.say("thanks") == []
    code = code_in(await web.say("link"))
    await telegram.say(f"link {code}")
    joined = await telegram.say("yes")
    assert joined[1].text == "Where we left off: Which order?"
    assert [(b.title, b.payload) for b in joined[1].buttons] == [
        ("A1001", "order:A1001"), ("A1002", "order:A1002")]


async def test_the_join_notice_is_kept_in_the_conversation_history() -> None:
    engine, sent = make()
    web, telegram = Person(engine, "web", "s"), Person(engine, "telegram", "1")
    code = code_in(await web.say("link"))
    await telegram.say(f"link {code}")
    await telegram.say("yes")
    history = await engine.store.history(await web.customer(), 50)
    notices = [e for e in history if "A Telegram chat joined this conversation." in e.text]
    assert len(notices) == 1 and notices[0].channel == "web"
    assert any("A Telegram chat joined" in t for t in sent.texts("web"))


async def test_channels_and_unlink_say_exactly_which_channels() -> None:
    engine, _ = make()
    web, telegram = Person(engine, "web", "s"), Person(engine, "telegram", "7")
    assert (await web.say("unlink telegram"))[0].text == "No Telegram chat is linked."
    code = code_in(await web.say("link"))
    await telegram.say(f"link {code}")
    await telegram.say("yes")
    owner = await web.customer()
    assert (await telegram.say("hello"))[0].text == "ok"
    assert (await web.say("channels"))[0].text == (
        "This conversation is linked with: Telegram, web chat. "
        "Send “unlink <channel>” (web, telegram or slack) to remove one.")
    assert (await web.say("unlink Telegram"))[0].text == (
        "Telegram is no longer linked to this conversation; its next message starts a new one.")
    assert await store_identities(engine, owner) == [ChannelIdentity("web", "s")]
    # This worker forgets it too, without waiting for a turn to correct it.
    assert await engine.customer_of(ChannelIdentity("telegram", "7")) != owner
    assert await web.customer() == owner


async def store_identities(engine: Engine, customer: str) -> list[ChannelIdentity]:
    return list(await engine.store.identities(customer))


async def test_a_channel_segue_does_not_know_is_named_as_typed() -> None:
    engine, _ = make()
    assert (await Person(engine, "web", "s").say("unlink fax"))[0].text == "No fax chat is linked."


async def test_a_code_that_cannot_be_made_is_said_plainly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _ = make()
    taken = normalised_code(code_in(await Person(engine, "web", "s").say("link")))
    monkeypatch.setattr(bot.linking.service, "new_code", lambda: taken)
    refused = await Person(engine, "slack", "T:U").say("link")
    assert refused[0].text == "Sorry, I could not make a code just now. Please try again."
    assert refused[0].links == ()
