"""Edges of the agent API's handoff actions (docs/protocol.md "Agent API"),
against the real app on loopback, the demo bot and a real Redis: the longest
reply, an admin transferring a bot conversation, odd transfer targets, and
what each refusal says."""

from __future__ import annotations

import aiohttp

from tests.support.app_server import RunningApp
from tests.support.handoff_rig import (
    agent,
    agent_frame,
    claimed_chat,
    hand_off,
    web_customer,
)


async def test_a_reply_of_exactly_4096_characters_reaches_the_customer(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    longest = "x" * 4096
    answer = await ann.act(customer, "messages", {"text": longest})
    assert (answer["delivered"], answer["channel"]) == (True, "web")
    assert answer["entry"]["text"] == longest and answer["entry"]["agent_name"] == "ann"
    assert (await agent_frame(client))["text"] == longest
    status, body = await ann.call("POST", f"conversations/{customer}/messages",
                                  {"text": longest + "x"})
    assert (status, body["error"]) == (400, "bad_text") and "4096" in body["message"]
    await client.close()


async def test_an_admin_transfers_a_bot_conversation_to_an_agent(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await web_customer(http, desk_app)
    await client.turn("hello")
    customer = client.customer or ""
    root = await agent(http, desk_app, "root")
    moved = await root.act(customer, "transfer", {"agent": "bob"})
    assert moved["customer"] == customer
    assert (moved["handoff"]["status"], moved["handoff"]["agent"]) == ("claimed", "bob")
    assert "admin" in moved["handoff"]["reason"]
    told = await agent_frame(client)
    assert (told["text"], told["agent_name"]) == (
        "bob from our team is taking over this conversation.", "bob")
    bob = await agent(http, desk_app, "bob")
    assert await bob.call("GET", "claimed") == (200, [{"customer": customer, "agent": "bob"}])
    await client.close()


async def test_a_transfer_to_anything_but_an_account_name_is_refused(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    for target in (["bob"], {"username": "bob"}, 7, None, "zoe"):
        status, body = await ann.call("POST", f"conversations/{customer}/transfer",
                                      {"agent": target})
        assert (status, body["error"]) == (400, "unknown_agent"), target
        assert isinstance(body["message"], str) and body["message"]
    assert (await ann.conversation(customer))["handoff"]["agent"] == "ann"
    await client.close()


async def test_refusals_say_why_and_who_holds_the_conversation(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    idle = await web_customer(http, desk_app)
    await idle.turn("hello")
    waiting = await web_customer(http, desk_app)
    await hand_off(waiting)
    idle_id, held = idle.customer or "", waiting.customer or ""
    ann, bob, root = [await agent(http, desk_app, n) for n in ("ann", "bob", "root")]
    await ann.act(held, "claim")
    refusals = [
        (bob, f"{idle_id}/messages", {"text": "hi"}, 403, "not_in_queue"),
        (bob, f"{idle_id}/claim", None, 403, "not_in_queue"),
        (bob, f"{held}/messages", {"text": "hi"}, 403, "not_yours"),
        (bob, f"{held}/release", None, 403, "not_yours"),
        (ann, f"{held}/messages", {"text": "  "}, 400, "bad_text"),
        (root, f"{idle_id}/close", None, 409, "not_handed_off"),
        (root, "no.such/claim", None, 404, "unknown_customer"),
        (root, "0123456789abcdef/claim", None, 404, "unknown_customer"),
    ]
    for client, path, payload, status, code in refusals:
        got, body = await client.call("POST", f"conversations/{path}", payload)
        assert (got, body["error"]) == (status, code), path
        assert isinstance(body["message"], str) and body["message"], path
        if code == "not_yours":
            assert "ann" in body["message"]
    await idle.close()
    await waiting.close()
