"""The customer's rating of a conversation a person closed, from outside:
Segue's real app on loopback on a real Redis, an agent closing through the
agent API, the customer answering on the web chat (a real WebSocket), on
Telegram (a press of the inline button, through the local Bot API fake) and
on Slack (a `block_actions` press, through the local Web API fake). The
rating shows in the agent API's conversation view, live on the agents'
socket and on the report's records; writing something else instead drops
the question, and a score pressed again never rates anew."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.core.model import ChannelIdentity
from bot.handoff.ports import HandoffRecord
from tests.fakes.slack_api import TEAM_ID
from tests.fakes.telegram_api import CUSTOMER, callback_update, keyboard_of
from tests.support.app_server import RunningApp
from tests.support.channels_rig import SLACK_USER, ChannelsRig
from tests.support.handoff_rig import AgentClient, agent, agent_frame, claimed_chat
from tests.support.slack_rig import buttons_of, press
from tests.support.webchat_client import WebChatClient

QUESTION = "How did we do? Please rate this conversation from 1 (poor) to 5 (great)."
TITLES = ["1", "2", "3", "4", "5"]
ASK_COMMENT = ("Thank you for your rating! Anything you'd like to add? Write it here, or press "
               "No, thanks.")
SKIP = [{"title": "No, thanks", "payload": "csat:skip"}]
ALREADY = "You've already rated this conversation, thank you."
PASSED_ON = "Thank you, we've passed it on."
TELEGRAM_ID = ChannelIdentity("telegram", str(CUSTOMER["id"]))
SLACK_ID = ChannelIdentity("slack", f"{TEAM_ID}:{SLACK_USER}")


def scores_of(buttons: list[tuple[str, str]]) -> dict[str, str]:
    """The rating question's buttons (title, payload) as title -> payload,
    once each is checked to be a score's: `csat:N`, naming the closed
    handoff's record after another colon or not."""
    assert [title for title, _ in buttons] == TITLES, buttons
    for title, payload in buttons:
        assert re.fullmatch(rf"csat:{title}(:\w+)?", payload), payload
    return dict(buttons)


async def closed_web_chat(
    http: aiohttp.ClientSession, app: RunningApp,
) -> tuple[WebChatClient, str, AgentClient, dict[str, str]]:
    """A web chat customer whom ann answered, then closed with: the
    customer's client (the rating question just received), their id, ann,
    and the question's buttons (title -> payload)."""
    client, customer, ann = await claimed_chat(http, app)
    await agent_frame(client)  # ann joined
    await ann.act(customer, "messages", {"text": "Your parcel is on its way."})
    await agent_frame(client)
    await ann.act(customer, "close")
    told, question = await client.next_message(), await client.next_message()
    assert told["text"].startswith("ann closed this conversation.")
    assert question["text"] == QUESTION
    return client, customer, ann, scores_of([(b["title"], b["payload"])
                                             for b in question["buttons"]])


async def records_of(app: RunningApp) -> list[HandoffRecord]:
    assert app.segue.handoff is not None
    return await app.segue.handoff.agents.records_between(0.0, time.time() + 60, 100)


async def test_a_web_chat_customer_rates_with_a_button_and_comments(
    http: aiohttp.ClientSession, desk_app: RunningApp,
) -> None:
    # root, an admin, whose console gets every conversation's live events.
    root = await (await agent(http, desk_app, "root")).listen()
    client, customer, ann, scores = await closed_web_chat(http, desk_app)
    assert "csat" not in await ann.conversation(customer)

    [comment_question] = await client.turn("4", payload=scores["4"])
    assert (comment_question["text"], comment_question["buttons"]) == (ASK_COMMENT, SKIP)
    rated = await root.event("rated")
    assert rated == {"type": "rated", "customer": customer, "score": 4}
    view = await ann.conversation(customer)
    assert {k: v for k, v in view["csat"].items() if k != "rated_at"} == {
        "score": 4, "comment": None, "agent": "ann", "agent_name": "ann"}
    assert view["csat"]["rated_at"] >= view["handoff_times"]["closed_at"]

    [thanks] = await client.turn("Quick and kind, thank you Ann!")
    assert thanks["text"] == PASSED_ON
    view = await ann.conversation(customer)
    assert (view["csat"]["score"], view["csat"]["comment"]) == (
        4, "Quick and kind, thank you Ann!")
    # The team's timeline says a comment came, never its words.
    lines = [(e["event"], e["text"]) for e in view["history"] if e["sender"] == "internal"]
    assert lines[-2:] == [("rated", "Rated 4/5"), ("rated", "Comment added")]
    # The report's anonymous record holds the score.
    [record] = await records_of(desk_app)
    assert (record.agent, record.csat) == ("ann", 4)
    # The customer never sees the team's lines.
    again = await WebChatClient.connect(http, desk_app.ws_url, session=client.session)
    assert [m["text"] for m in again.history][-4:] == [
        "4", ASK_COMMENT, "Quick and kind, thank you Ann!", PASSED_ON]
    assert all(m["sender"] in ("customer", "bot", "agent") for m in again.history)
    for socket in (again, client, ann, root):
        await socket.close()


async def test_a_typed_score_counts_and_no_thanks_ends_it(
    http: aiohttp.ClientSession, desk_app: RunningApp,
) -> None:
    client, customer, ann, _ = await closed_web_chat(http, desk_app)
    [comment_question] = await client.turn("5/5")
    assert comment_question["text"] == ASK_COMMENT
    [thanks] = await client.turn("No, thanks", payload="csat:skip")
    assert thanks["text"] == "Thank you!"
    view = await ann.conversation(customer)
    assert (view["csat"]["score"], view["csat"]["comment"]) == (5, None)
    assert [r.csat for r in await records_of(desk_app)] == [5]
    # Back with the bot as ever: its answers follow.
    [asked] = await client.turn("where is my order")
    assert "order number" in asked["text"]
    await client.close()


async def test_writing_something_else_drops_the_question_and_the_bot_answers(
    http: aiohttp.ClientSession, desk_app: RunningApp,
) -> None:
    client, customer, ann, _ = await closed_web_chat(http, desk_app)
    [asked] = await client.turn("where is my order")
    assert "order number" in asked["text"]
    [answer] = await client.turn("A1001")
    assert "shipped" in answer["text"]
    # A digit typed now is no rating any more.
    await client.turn("4")
    view = await ann.conversation(customer)
    assert "csat" not in view
    assert not [e for e in view["history"] if e.get("event") == "rated"]
    assert [r.csat for r in await records_of(desk_app)] == [None]
    await client.close()


async def test_a_score_pressed_again_never_rates_anew(
    http: aiohttp.ClientSession, desk_app: RunningApp,
) -> None:
    client, customer, ann, scores = await closed_web_chat(http, desk_app)
    await client.turn("2", payload=scores["2"])
    # While the comment is asked for, and once it is done.
    [already] = await client.turn("5", payload=scores["5"])
    assert already["text"] == ALREADY
    [thanks] = await client.turn("No, thanks", payload="csat:skip")
    assert thanks["text"] == "Thank you!"
    [already] = await client.turn("5", payload=scores["5"])
    assert already["text"] == ALREADY
    view = await ann.conversation(customer)
    assert view["csat"]["score"] == 2
    assert [e["text"] for e in view["history"] if e.get("event") == "rated"] == ["Rated 2/5"]
    assert [r.csat for r in await records_of(desk_app)] == [2]
    await client.close()


async def test_a_telegram_customer_rates_with_the_inline_button(channels: ChannelsRig) -> None:
    await channels.telegram_says("/agent")
    await channels.telegram_sent(2)
    customer = await channels.customer_of(TELEGRAM_ID)
    ann = await channels.agent("ann")
    await ann.act(customer, "claim")
    await ann.act(customer, "messages", {"text": "Sorted, the refund is on its way."})
    await ann.act(customer, "close")
    calls = await channels.telegram.wait_for("sendMessage", 6)
    told, question = calls[4], calls[5]
    assert told.params["text"].startswith("ann closed this conversation.")
    assert question.params["text"] == QUESTION
    scores = scores_of([(b["text"], b["callback_data"]) for b in keyboard_of(question)])

    press_four = callback_update(channels.telegram.new_update_id(), question, scores["4"])
    assert await channels.telegram.post_update(press_four) == 200
    comment_question = (await channels.telegram.wait_for("sendMessage", 7))[6]
    assert comment_question.params["text"] == ASK_COMMENT
    assert [(b["text"], b["callback_data"]) for b in keyboard_of(comment_question)] == [
        ("No, thanks", "csat:skip")]
    await channels.telegram_says("The refund came in an hour. Great!")
    assert (await channels.telegram_sent(8))[7] == PASSED_ON

    view = await ann.conversation(customer)
    assert (view["csat"]["score"], view["csat"]["comment"], view["csat"]["agent"]) == (
        4, "The refund came in an hour. Great!", "ann")
    # The old button pressed again: answered, never rated anew.
    press_one = callback_update(channels.telegram.new_update_id(), question, scores["1"])
    assert await channels.telegram.post_update(press_one) == 200
    assert (await channels.telegram_sent(9))[8] == ALREADY
    assert (await ann.conversation(customer))["csat"]["score"] == 4
    assert [r.csat for r in await records_of(channels.app)] == [4]
    await ann.close()


async def test_a_slack_customer_rates_with_a_block_button(channels: ChannelsRig) -> None:
    await channels.slack_says("talk to a human")
    await channels.slack_posts(2)
    customer = await channels.customer_of(SLACK_ID)
    ann = await channels.agent("ann")
    await ann.act(customer, "claim")
    await ann.act(customer, "close")
    posted = await posts_with_ts(channels, 5)
    told, question = posted[3], posted[4]
    assert told["text"].startswith("ann closed this conversation.")
    assert question["text"].startswith(QUESTION)
    scores_of([(b["text"]["text"], b["value"]) for b in buttons_of(question)])

    assert await slack_press(channels, press(question, 2, user=SLACK_USER)) == 200
    comment_question = (await posts_with_ts(channels, 6))[5]
    assert comment_question["text"].startswith(ASK_COMMENT)
    assert await slack_press(channels, press(comment_question, 0, user=SLACK_USER)) == 200
    assert (await channels.slack_posts(7))[6] == "Thank you!"
    view = await ann.conversation(customer)
    assert (view["csat"]["score"], view["csat"]["comment"]) == (3, None)
    assert [r.csat for r in await records_of(channels.app)] == [3]
    await ann.close()


async def posts_with_ts(channels: ChannelsRig, count: int) -> list[dict[str, Any]]:
    """The first `count` messages posted, each with the `ts` Slack gave it."""
    await channels.slack.wait_posted(count)
    accepted = [c for c in channels.slack.calls_to("chat.postMessage") if c.status == 200]
    return [dict(call.args, _ts=call.response["ts"]) for call in accepted[:count]]


async def slack_press(channels: ChannelsRig, payload: dict[str, Any]) -> int:
    """A button press posted as Slack posts interactions: form-encoded."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return await channels.slack_post(body, "application/x-www-form-urlencoded")


async def test_asking_to_be_forgotten_is_never_taken_as_a_comment(
    http: aiohttp.ClientSession, desk_app: RunningApp,
) -> None:
    client, customer, ann, buttons = await closed_web_chat(http, desk_app)
    [comment_question] = await client.turn("4", payload=buttons["4"])
    assert comment_question["text"] == ASK_COMMENT
    [asked] = await client.turn("forget me")
    assert asked["text"] != PASSED_ON
    assert [b["payload"] for b in asked["buttons"]][:1] != ["csat:skip"]
    view = await ann.conversation(customer)
    assert (view["csat"]["score"], view["csat"]["comment"]) == (4, None)
    await client.close()
