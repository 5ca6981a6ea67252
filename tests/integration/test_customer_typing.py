"""The visitor's typing in the web chat reaches the agents' consoles
(docs/protocol.md, "Client frames": `typing`; "Live events": `typing`): only
while the conversation is handed off, to its holder (everyone while it waits)
and the admins; an `on` at most every 2 s per socket, an `off` only after an
`on`; malformed frames refused; never stored, acknowledged or counted as a
message.

Real app on loopback with the demo bot, real Redis, real console sockets on
`/agent/ws`. The web chat's typing throttle reads a clock the test moves.
A dropped frame is proven dropped by the frame after it, which is published:
one socket's frames are handled in order, and the bus keeps their events'
order, so a dropped frame that had been published would have come first."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from connectors.webchat import WebChatConnector
from tests.support.app_server import RunningApp
from tests.support.handoff_rig import (
    AgentClient,
    agent,
    agent_frame,
    claimed_chat,
    hand_off,
    web_customer,
)
from tests.support.webchat_client import WebChatClient


class Clock:
    """The throttle's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(desk_app: RunningApp) -> Clock:
    moved = Clock()
    web_chat = desk_app.segue.connectors["web"]
    assert isinstance(web_chat, WebChatConnector)
    web_chat.customer_typing.clock = moved
    return moved


def typing_event(customer: str, holder: str | None, on: bool) -> dict[str, Any]:
    return {"type": "typing", "customer": customer, "agent": holder, "on": on}


async def types(client: WebChatClient, on: Any) -> None:
    await client.send({"type": "typing", "on": on})


async def listening(http: aiohttp.ClientSession, app: RunningApp, name: str) -> AgentClient:
    return await (await agent(http, app, name)).listen()


def typing_seen(console: AgentClient) -> list[dict[str, Any]]:
    return [e for e in console.events if e["type"] == "typing"]


async def test_the_holder_and_admins_see_the_visitor_typing_and_another_agent_does_not(
    desk_app: RunningApp, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    await ann.listen()
    bob, root = await listening(http, desk_app, "bob"), await listening(http, desk_app, "root")

    await types(client, True)
    for console in (ann, root):
        assert await console.event("typing") == typing_event(customer, "ann", True)
    await types(client, False)
    for console in (ann, root):
        assert await console.event("typing") == typing_event(customer, "ann", False)

    # Bob sees the queue, as everyone does; the typing events came before it.
    other = await web_customer(http, desk_app)
    await hand_off(other)
    queued = await bob.event("queued")
    assert queued["customer"] == other.customer
    assert typing_seen(bob) == []
    for console in (ann, bob, root):
        await console.close()
    await client.close()
    await other.close()


async def test_a_waiting_conversation_is_everyones_and_one_with_the_bot_nobodys(
    desk_app: RunningApp, http: aiohttp.ClientSession, clock: Clock
) -> None:
    ann, bob = await listening(http, desk_app, "ann"), await listening(http, desk_app, "bob")
    client = await web_customer(http, desk_app)
    await client.turn("hello")
    customer = client.customer or ""
    # With the bot: nobody watches, nothing is published; and the `off`
    # ends no `on` that was passed on.
    await types(client, True)
    await types(client, False)
    await hand_off(client)
    clock.now += 2
    await types(client, True)
    for console in (ann, bob):
        assert await console.event("typing") == typing_event(customer, None, True)
        kinds = [e["type"] for e in console.events]
        assert kinds.count("typing") == 1 and kinds.index("queued") < kinds.index("typing")

    # Back with the bot: an `on` is dropped again, but the `off` that ends
    # the `on` the consoles saw still comes, with nobody holding it.
    await ann.act(customer, "claim")
    await ann.act(customer, "release")
    clock.now += 2
    await types(client, True)
    await types(client, False)
    for console in (ann, bob):
        assert await console.event("typing") == typing_event(customer, None, False)
        assert len(typing_seen(console)) == 2
    for console in (ann, bob):
        await console.close()
    await client.close()


async def test_an_on_at_most_every_two_seconds_per_socket_and_an_off_only_after_one(
    desk_app: RunningApp, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    await ann.listen()
    other_tab = await web_customer(http, desk_app, session=client.session)

    await types(client, True)
    assert await ann.event("typing") == typing_event(customer, "ann", True)
    clock.now = 1001.9
    await types(client, True)  # dropped: 1.9 s after the last
    await types(client, False)
    assert await ann.event("typing") == typing_event(customer, "ann", False)
    await types(client, False)  # dropped: no `on` to end
    await types(client, True)  # dropped: an `off` between does not reset the 2 s
    # Another socket has its own 2 s.
    await types(other_tab, True)
    assert await ann.event("typing") == typing_event(customer, "ann", True)
    clock.now = 1002.0
    await types(client, True)
    assert await ann.event("typing") == typing_event(customer, "ann", True)
    # Still on after 2 s: said again, so a console's own timeout keeps it shown.
    clock.now = 1004.0
    await types(client, True)
    assert await ann.event("typing") == typing_event(customer, "ann", True)
    assert len(typing_seen(ann)) == 5

    # A socket that closes while its `on` stands ends it.
    await client.close()
    assert await ann.event("typing") == typing_event(customer, "ann", False)
    await other_tab.close()
    assert await ann.event("typing") == typing_event(customer, "ann", False)
    await ann.close()


async def test_malformed_typing_frames_are_refused_and_the_socket_stays_open(
    desk_app: RunningApp, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    await ann.listen()
    assert (await agent_frame(client))["event"] == "agent_joined"
    for on in ("yes", 1, 0, None, [True], {"on": True}):
        await types(client, on)
        frame = await client.next_frame()
        assert (frame["type"], frame["code"]) == ("error", "bad_typing"), on
        assert frame["message"] == "'on' must be true or false"
    await client.send({"type": "typing"})
    assert (await client.next_frame())["code"] == "bad_typing"
    # The socket still works, and nothing was published: the first event is
    # this `on`, which no refused frame used up.
    await types(client, True)
    assert await ann.event("typing") == typing_event(customer, "ann", True)
    assert len(typing_seen(ann)) == 1
    assert (await client.turn("still here", expect=0)) == []

    # Before a hello, as a message before a hello.
    early = await http.ws_connect(desk_app.ws_url)
    await early.send_str(json.dumps({"type": "typing", "on": True}))
    refused = json.loads((await early.receive(timeout=10)).data)
    assert (refused["type"], refused["code"]) == ("error", "hello_required")
    await early.send_str(json.dumps({"type": "hello"}))
    assert json.loads((await early.receive(timeout=10)).data)["type"] == "session"
    await early.close()
    await ann.close()
    await client.close()


async def test_typing_is_never_stored_acknowledged_or_counted_as_a_message(
    desk_app: RunningApp, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    await ann.listen()
    assert (await agent_frame(client))["event"] == "agent_joined"
    store = desk_app.segue.store
    history_before = await store.history(customer, 500)
    state_before = await store.load_state(customer)
    # Far more than the session's burst of 20 messages, as fast as it goes;
    # a malformed one last, whose error is the first answer to any of them.
    for n in range(60):
        await types(client, n % 2 == 0)
    await client.send({"type": "typing"})
    assert (await client.next_frame())["code"] == "bad_typing"
    assert await store.history(customer, 500) == history_before
    assert await store.load_state(customer) == state_before

    # Nor is a message after them refused as one too many: its ack is next.
    msg_id = await client.say("are you there?")
    assert await client.next_frame() == {"type": "ack", "id": msg_id}
    entry = await ann.event("message", text="are you there?")
    assert entry["entry"]["sender"] == "customer"
    # Published before the message's event: the first `on` and its `off`.
    assert typing_seen(ann) == [typing_event(customer, "ann", True),
                                typing_event(customer, "ann", False)]
    await ann.close()
    await client.close()
