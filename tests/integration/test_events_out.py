"""Events out, end to end: Segue's real app on Redis POSTs what happens in
conversations to a receiver on loopback, which checks every signature as
docs/api.md tells users to. Events come in order per customer, a refused
or unanswered one is sent again (the same id) while conversations go on,
handoffs, links and erases are told, and a new worker on the same Redis
sends what a stopped one left."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from bot.core.policy import Policy
from context_store import RedisContextStore
from tests.support.app_server import RunningApp, serve_segue, web_settings
from tests.support.events_receiver import HANG, SECRET, EventReceiver, receiving
from tests.support.handoff_rig import add_accounts, agent
from tests.support.policies import EchoMenuPolicy
from tests.support.webchat_client import WebChatClient

ROOT = Path(__file__).resolve().parents[2]
CODE_IN_TEXT = re.compile(r"link code is (\S+?)\.\s")
GREETING = "Hi! What would you like to do?"


@asynccontextmanager
async def sending_to(receiver: EventReceiver, redis_url: str, *, fast_retries: bool = True,
                     policy: Policy | None = None) -> AsyncIterator[RunningApp]:
    """One worker on Redis whose events go to `receiver`; with `fast_retries`
    a refused customer is tried again within a few hundredths of a second
    (the delays themselves are the unit tests')."""

    def configure(segue: Any) -> None:
        dispatcher = segue.events_out.dispatcher
        assert dispatcher is not None and segue.events is not None
        if fast_retries:
            dispatcher.options = replace(dispatcher.options, first_retry_seconds=0.01,
                                         max_retry_seconds=0.05)

    settings = web_settings(redis_url, events_url=receiver.url, events_secret=SECRET)
    async with serve_segue(settings, store=RedisContextStore.from_url(redis_url),
                           policy=policy or EchoMenuPolicy(), configure=configure) as app:
        await add_accounts(app)
        yield app


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Each event's type, and a message's sender and text."""
    return [(e["type"], f"{e['data']['sender']}: {e['data']['text']}"
             if e["type"] == "message.created" else None) for e in events]


def said(text: str, reply: str) -> list[tuple[str, str | None]]:
    return [("message.created", f"customer: {text}"), ("message.created", f"bot: {reply}")]


async def test_a_web_chat_conversation_is_told_in_order_with_valid_signatures(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        client = await WebChatClient.connect(http, app.ws_url)
        await client.turn("hi")
        await client.turn("where is my parcel")
        events = await receiver.wait_for(5)
        assert summary(events) == [("conversation.started", None), *said("hi", GREETING),
                                   *said("where is my parcel", "You said: where is my parcel")]
        assert events[0]["data"] == {"channel": "web"}
        assert events[1]["data"]["channel"] == "web" and events[1]["data"]["ts"] > 0
        assert {e["customer"] for e in events} == {client.customer}
        assert len({e["id"] for e in events}) == 5
        for delivery in receiver.deliveries:
            assert delivery.valid, delivery
            assert delivery.headers["Content-Type"] == "application/json"
            assert delivery.headers["X-Segue-Event-Id"] == delivery.id
        created = [e["created_at"] for e in events]
        assert created == sorted(created)
        await client.close()


async def test_a_refused_event_comes_again_with_its_id_then_the_rest_in_order(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        receiver.answers.extend([500, 503])
        client = await WebChatClient.connect(http, app.ws_url)
        await client.turn("hi")
        await client.turn("one more")
        events = await receiver.wait_for(5)
        tries = [(d.type, d.status) for d in receiver.deliveries]
        assert tries[:3] == [("conversation.started", 500), ("conversation.started", 503),
                             ("conversation.started", 200)]
        assert len({d.id for d in receiver.deliveries[:3]}) == 1
        assert summary(events) == [("conversation.started", None), *said("hi", GREETING),
                                   *said("one more", "You said: one more")]
        assert len(receiver.deliveries) == 7  # nothing accepted came twice
        await client.close()


async def test_the_customer_is_answered_while_the_receiver_does_not_answer(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        receiver.answers.append(HANG)
        client = await WebChatClient.connect(http, app.ws_url)
        assert [r["text"] for r in await client.turn("hi")] == [GREETING]
        await receiver.wait_until(lambda: len(receiver.deliveries) == 1)
        for n in range(3):
            [reply] = await client.turn(f"still there {n}?")
            assert reply["text"] == f"You said: still there {n}?"
        # Every answer came while the first event had no answer yet.
        assert receiver.accepted == []
        assert [(d.type, d.status) for d in receiver.deliveries] == [("conversation.started", 0)]
        receiver.released.set()
        events = await receiver.wait_for(9)
        assert summary(events)[:3] == [("conversation.started", None), *said("hi", GREETING)]
        assert summary(events)[-2:] == said("still there 2?", "You said: still there 2?")
        await client.close()


async def test_a_refusing_receiver_never_holds_the_conversation_up(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        receiver.default = 500
        client = await WebChatClient.connect(http, app.ws_url)
        await client.turn("hi")
        await receiver.wait_until(lambda: len(receiver.deliveries) >= 3)
        [reply] = await client.turn("hello again")
        assert reply["text"] == "You said: hello again"
        assert {d.type for d in receiver.deliveries} == {"conversation.started"}
        receiver.default = 200
        events = await receiver.wait_for(5)
        assert summary(events)[-2:] == said("hello again", "You said: hello again")
        await client.close()


async def test_a_handoff_is_told_from_queued_to_rated(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        client = await WebChatClient.connect(http, app.ws_url)
        await client.turn("/agent", expect=2)
        customer = client.customer or ""
        ann = await agent(http, app, "ann")
        await ann.act(customer, "claim")
        await ann.act(customer, "messages", {"text": "Ann here, how can I help?"})
        await ann.act(customer, "close")
        record = await _rating_record(client)
        await client.turn("4", payload=f"csat:4:{record}")
        await client.turn("Quick and kind")
        events = await receiver.wait_until(
            lambda: sum(e["type"] == "handoff.rated" for e in receiver.of(customer)) == 2,
            then=lambda: receiver.of(customer))
        told = [(e["type"], e["data"]) for e in events if e["type"].startswith("handoff.")]
        assert told == [
            ("handoff.queued", {"reason": "customer sent /agent"}),
            ("handoff.claimed", {"agent": "ann", "assigned": False}),
            ("handoff.closed", {"agent": "ann", "record": record, "csat": None,
                                "released": False}),
            ("handoff.rated", {"record": record, "csat": {"score": 4, "comment": None}}),
            ("handoff.rated", {"record": record,
                               "csat": {"score": 4, "comment": "Quick and kind"}}),
        ]
        [agent_said] = [e["data"] for e in events
                        if e["type"] == "message.created" and e["data"]["sender"] == "agent"]
        assert agent_said["text"] == "Ann here, how can I help?"
        assert (agent_said["agent"], agent_said["agent_name"], agent_said["channel"]) == (
            "ann", "ann", "web")
        # In order: the agent's message after the claim, before the close.
        kinds = [e["type"] for e in events]
        assert kinds.index("handoff.claimed") < kinds.index("handoff.closed")
        assert kinds.index("handoff.claimed") < [
            i for i, e in enumerate(events) if e["data"].get("sender") == "agent"][0]
        # The team's own lines (claimed, closed, rated) are never messages.
        assert all(e["data"]["sender"] in ("customer", "bot", "agent")
                   for e in events if e["type"] == "message.created")
        await client.close()


async def _rating_record(client: WebChatClient) -> str:
    """The closed handoff's record, named by the rating question's buttons."""
    while True:
        frame = await client.next_message()
        buttons = [b["payload"] for b in frame.get("buttons", ())]
        if buttons and buttons[0].startswith("csat:"):
            return str(buttons[0].split(":")[2])


async def test_a_link_is_told_for_the_customer_kept(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        issuer = await WebChatClient.connect(http, app.ws_url)
        joiner = await WebChatClient.connect(http, app.ws_url)
        [issued] = await issuer.turn("link")
        match = CODE_IN_TEXT.search(issued["text"])
        assert match is not None, issued
        await joiner.turn(f"link {match.group(1)}")
        await joiner.turn("yes", expect=1)
        kept, merged = issuer.customer or "", joiner.customer or ""
        linked = await receiver.wait_until(
            lambda: any(e["type"] == "customer.linked" for e in receiver.of(kept)),
            then=lambda: [e for e in receiver.of(kept) if e["type"] == "customer.linked"])
        assert [e["data"] for e in linked] == [
            {"kept": kept, "merged": merged, "channels": ["web"]}]
        await issuer.close()
        await joiner.close()


async def test_forget_me_takes_the_customers_waiting_events_and_tells_the_erase(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        # Nothing is accepted but the erase: whatever else of theirs still
        # waits after it would stand in its way for good.
        receiver.refusing = lambda event: event["type"] != "customer.erased"
        client = await WebChatClient.connect(http, app.ws_url)
        await client.turn("my card is 4111 1111 1111 1111")
        await client.turn("/agent", expect=2)
        await client.turn("forget me")
        await client.turn("yes")
        customer = client.customer or ""
        [erased] = await receiver.wait_for(1, customer)
        assert (erased["type"], erased["data"]) == ("customer.erased", {"by": "customer"})
        await _queue_emptied(app, customer)
        await client.close()


async def test_an_operators_erase_takes_the_waiting_events_and_tells_the_erase(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as app:
        receiver.refusing = lambda event: event["type"] != "customer.erased"
        client = await WebChatClient.connect(http, app.ws_url)
        await client.turn("my address is 1 Main St")
        customer = client.customer or ""
        await client.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
        env.update(SEGUE_REDIS_URL=redis_url, SEGUE_EVENTS_URL=receiver.url,
                   SEGUE_EVENTS_SECRET=SECRET)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "customers", "erase", customer, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        # Queued by the command; sent by the running worker.
        [erased] = await receiver.wait_for(1, customer)
        assert (erased["type"], erased["data"]) == ("customer.erased", {"by": "operator"})
        await _queue_emptied(app, customer)


async def _queue_emptied(app: RunningApp, customer: str) -> None:
    """Once the last event is sent, the customer's queue keys are gone."""
    store = app.segue.store
    assert isinstance(store, RedisContextStore)
    async with asyncio.timeout(10):
        while await store.client.exists(f"segue:{{c:{customer}}}:events",
                                        f"segue:{{c:{customer}}}:events-lease"):
            await asyncio.sleep(0.02)  # the dispatcher's last step: no event to await


async def test_a_new_worker_sends_what_a_stopped_one_left(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver:
        # Refused once, then no answer at all: the first worker stops while
        # it waits for one, and must hand the queue on at once.
        receiver.answers.extend([500, HANG])
        async with sending_to(receiver, redis_url) as first:
            client = await WebChatClient.connect(http, first.ws_url)
            await client.turn("hi")
            await client.turn("are you there")
            await receiver.wait_until(lambda: len(receiver.deliveries) == 2)
            await client.close()
        tried = {d.id for d in receiver.deliveries}
        async with sending_to(receiver, redis_url, fast_retries=False):
            events = await receiver.wait_for(5)
        assert summary(events) == [("conversation.started", None), *said("hi", GREETING),
                                   *said("are you there", "You said: are you there")]
        assert tried == {events[0]["id"]}


async def test_each_customers_events_stay_in_order_across_two_workers(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with receiving() as receiver, sending_to(receiver, redis_url) as one, \
            sending_to(receiver, redis_url) as two:
        # Every third POST is refused: retries must not reorder anything.
        receiver.answers.extend([200, 200, 500] * 40)

        async def chat(app: RunningApp, n: int) -> tuple[str, list[str]]:
            client = await WebChatClient.connect(http, app.ws_url)
            texts = [f"customer {n} message {m}" for m in range(3)]
            for text in texts:
                await client.turn(text)
            await client.close()
            return client.customer or "", texts

        chats = await asyncio.gather(*(chat(one if n % 2 else two, n) for n in range(6)))
        await receiver.wait_for(6 * 7)
        for customer, texts in chats:
            expected: list[tuple[str, str | None]] = [("conversation.started", None)]
            for text in texts:
                expected += said(text, f"You said: {text}")
            assert summary(receiver.of(customer)) == expected
        assert all(d.valid for d in receiver.deliveries)
        ids = [e["id"] for e in receiver.accepted]
        assert len(ids) == len(set(ids)) == 42

