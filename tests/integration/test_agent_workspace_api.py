"""The agent workspace over the agent API (docs/protocol.md "Agent API"):
private notes, the team's internal steps in one timeline, the waiting
flag, response and resolution times, and the report; against the real app
on loopback and a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support.app_server import RunningApp
from tests.support.handoff_rig import (
    agent,
    agent_frame,
    claimed_chat,
    hand_off,
    running,
    web_customer,
)
from tests.support.webchat_client import WebChatClient

NOTE = "Customer sounds upset: VIP, refund approved by Carla"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def timeline(view: dict[str, object]) -> list[tuple[str, str | None, str]]:
    history = view["history"]
    assert isinstance(history, list)
    return [(e["sender"], e.get("event"), e["text"]) for e in history]


async def test_a_note_is_kept_in_the_timeline_and_never_reaches_the_customer(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    bob = await (await agent(http, desk_app, "bob")).listen()
    answer = await ann.act(customer, "notes", {"text": NOTE})
    entry = answer["entry"]
    assert (entry["sender"], entry["channel"], entry["text"]) == ("note", "console", NOTE)
    assert (entry["agent"], entry["agent_name"]) == ("ann", "ann")
    # Everyone on the team sees it live, the holder's colleagues too.
    event = await bob.event("note")
    assert (event["customer"], event["agent"], event["entry"]) == (customer, "ann", entry)
    # Bob, who does not hold the conversation, may note it as well.
    await bob.act(customer, "notes", {"text": "Seen, thanks"})

    # The customer gets the join notice, then the reply: no note came between.
    await ann.act(customer, "messages", {"text": "Your refund is on its way."})
    said = [(await agent_frame(client))["text"], (await agent_frame(client))["text"]]
    assert said == ["ann from our team has joined the conversation.",
                    "Your refund is on its way."]
    # Nor on a reload: the replayed history has no note and no internal line.
    again = await web_customer(http, desk_app, session=client.session)
    texts = [m["text"] for m in again.history]
    assert "Your refund is on its way." in texts
    assert NOTE not in texts and "Seen, thanks" not in texts
    assert {m["sender"] for m in again.history} <= {"customer", "bot", "agent"}

    kept = timeline(await ann.conversation(customer))
    assert ("note", None, NOTE) in kept and ("note", None, "Seen, thanks") in kept
    assert kept.index(("note", None, NOTE)) < kept.index(
        ("agent", None, "Your refund is on its way."))
    await bob.close()


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "  \n"}, {"text": 5},
                                  {"text": "x" * 4097}])
async def test_a_bad_note_is_refused_and_nothing_is_stored(
    http: aiohttp.ClientSession, desk_app: RunningApp, body: dict[str, object]
) -> None:
    _, customer, ann = await claimed_chat(http, desk_app)
    before = (await ann.conversation(customer))["history"]
    status, answer = await ann.call("POST", f"conversations/{customer}/notes", body)
    assert (status, answer["error"]) == (400, "bad_text"), answer
    assert (await ann.conversation(customer))["history"] == before


async def test_a_note_on_nobody_or_without_a_session_is_refused(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    ann = await agent(http, desk_app, "ann")
    for customer in ("0123456789abcdef0123456789abcdef", "a.b", "a" * 65):
        status, answer = await ann.call("POST", f"conversations/{customer}/notes",
                                        {"text": NOTE})
        assert (status, answer["error"]) == (404, "unknown_customer"), customer
    status, answer = await ann.call("POST", "conversations/abc/notes", {"text": NOTE},
                                    token="not-a-session")
    assert (status, answer["error"]) == (401, "unauthenticated")


async def test_every_step_of_the_team_is_a_line_of_the_timeline(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    # An admin's console sees every conversation's lines, whoever holds it.
    root = watcher = await (await agent(http, desk_app, "root")).listen()
    await ann.act(customer, "claim")
    claimed = await watcher.event("message", text="ann took the conversation")
    assert claimed["entry"]["sender"] == "internal" and claimed["entry"]["event"] == "claimed"
    await root.act(customer, "transfer", {"agent": "bob"})
    await watcher.event("message", text="root moved the conversation from ann to bob")
    await root.act(customer, "release")
    await watcher.event("message", text="root gave the conversation back to the bot")

    internal = [(event, text) for sender, event, text in
                timeline(await root.conversation(customer)) if sender == "internal"]
    assert internal == [
        ("queued", "Waiting for a person: customer asked for a person"),
        ("claimed", "ann took the conversation"),
        ("transferred", "root moved the conversation from ann to bob"),
        ("released", "root gave the conversation back to the bot"),
    ]
    # The customer heard the public notices, and none of the team's lines.
    again = await web_customer(http, desk_app, session=client.session)
    said = " ".join(m["text"] for m in again.history)
    assert "took the conversation" not in said and "Waiting for a person" not in said
    await watcher.close()


async def test_answering_records_the_first_response_and_closing_the_times(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    clock = Clock(1_800_000_000.0)
    desk = desk_app.segue.handoff.desk if desk_app.segue.handoff else None
    assert desk is not None
    desk.clock = clock
    client = await web_customer(http, desk_app)
    await hand_off(client)
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    queued_at = (await ann.conversation(customer))["handoff"]["since"]
    clock.now = queued_at + 30
    await ann.act(customer, "claim")
    assert "first_response_at" not in (await ann.conversation(customer))["handoff"]
    clock.now = queued_at + 95
    await ann.act(customer, "messages", {"text": "Hello, I'm Ann."})
    clock.now = queued_at + 200
    await ann.act(customer, "messages", {"text": "Anything else?"})
    assert (await ann.conversation(customer))["handoff"]["first_response_at"] == queued_at + 95
    clock.now = queued_at + 600
    await ann.act(customer, "close")
    view = await ann.conversation(customer)
    assert view["handoff"] is None and "csat" not in view
    assert view["handoff_times"] == {
        "agent": "ann", "agent_name": "ann", "queued_at": queued_at,
        "claimed_at": queued_at + 30, "first_response_at": queued_at + 95,
        "closed_at": queued_at + 600, "first_response_seconds": 95.0,
        "resolution_seconds": 600.0}
    assert ("internal", "closed", "ann closed the conversation") in timeline(view)
    # The export has it too (the rating, once given, with the customer's comment).
    root = await agent(http, desk_app, "root")
    status, exported = await root.call("GET", f"customers/{customer}/export")
    closed = exported["conversation"]["closed_handoff"]
    assert (closed["agent"], closed["closed_at"], closed["rating"]) == (
        "ann", queued_at + 600, "asked")


async def test_the_queue_says_how_long_each_waits_and_flags_the_long_waits(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    desk = desk_app.segue.handoff.desk if desk_app.segue.handoff else None
    assert desk is not None
    clock = Clock(1_800_000_000.0)
    desk.clock = clock
    first, second = await web_customer(http, desk_app), await web_customer(http, desk_app)
    await hand_off(first)
    clock.now += 100
    await hand_off(second)
    ann = await agent(http, desk_app, "ann")
    clock.now += 201
    status, queue = await ann.call("GET", "queue")
    assert status == 200
    waits = {item["customer"]: (item["waited_seconds"], item["waiting_too_long"])
             for item in queue}
    assert waits == {first.customer: (301.0, True), second.customer: (201.0, False)}
    desk.options = replace(desk.options, queue_alert_seconds=3600)
    assert not any(item["waiting_too_long"] for item in (await ann.call("GET", "queue"))[1])


class Clock:
    """Time as the desk reads it, set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def closed_conversation(http: aiohttp.ClientSession, app: RunningApp, clock: Clock,
                              name: str, *, start: float, first_response: float | None,
                              resolution: float) -> WebChatClient:
    """A customer who asked for a person at `start`: `name` claims it at
    once, answers `first_response` seconds later (or never) and closes it
    `resolution` seconds after the request."""
    client = await web_customer(http, app)
    clock.now = start
    await hand_off(client)
    customer = client.customer or ""
    holder = await agent(http, app, name)
    await holder.act(customer, "claim")
    if first_response is not None:
        clock.now = start + first_response
        await holder.act(customer, "messages", {"text": "Let me check."})
    clock.now = start + resolution
    await holder.act(customer, "close")
    return client


async def test_the_report_counts_a_scripted_day_per_agent_and_overall(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    desk = desk_app.segue.handoff.desk if desk_app.segue.handoff else None
    assert desk is not None
    day = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    clock = Clock(day)
    desk.clock = clock
    # The engine stamps the queue with its own clock: the desk's decides.
    script = [("ann", 9, 60, 600), ("ann", 10, 120, 1200), ("ann", 11, None, 300),
              ("bob", 14, 30, 900), ("bob", 15, 90, 1500)]
    for name, hour, first, resolution in script:
        await closed_conversation(http, desk_app, clock, name, start=day + hour * 3600,
                                  first_response=first, resolution=resolution)
    # One the day before and one the day after count only in their own days.
    await closed_conversation(http, desk_app, clock, "ann", start=day - 3600,
                              first_response=10, resolution=20)
    await closed_conversation(http, desk_app, clock, "bob", start=day + 86400 + 60,
                              first_response=10, resolution=20)
    root = await agent(http, desk_app, "root")
    status, report = await root.call("GET", "report?from=2026-11-20&to=2026-11-20")
    assert status == 200, report
    assert (report["from"], report["to"]) == ("2026-11-20", "2026-11-20")
    assert report["overall"] == {"handled": 5, "median_first_response_seconds": 75.0,
                                 "median_resolution_seconds": 900.0, "csat_average": None,
                                 "csat_count": 0}
    assert report["agents"] == [
        {"agent": "ann", "name": "ann", "handled": 3, "median_first_response_seconds": 90.0,
         "median_resolution_seconds": 600.0, "csat_average": None, "csat_count": 0},
        {"agent": "bob", "name": "bob", "handled": 2, "median_first_response_seconds": 60.0,
         "median_resolution_seconds": 1200.0, "csat_average": None, "csat_count": 0},
    ]
    status, three_days = await root.call("GET", "report?from=2026-11-19&to=2026-11-21")
    assert three_days["overall"]["handled"] == 7


@pytest.mark.parametrize("query", ["from=yesterday", "from=2026-11-21&to=2026-11-20",
                                   "to=2026-13-01", "from=2020-01-01&to=2026-01-01",
                                   "from=9999-12-31&to=9999-12-31", "to=0001-01-02",
                                   "from=2026-02-30"])
async def test_a_bad_period_is_refused(
    http: aiohttp.ClientSession, desk_app: RunningApp, query: str
) -> None:
    root = await agent(http, desk_app, "root")
    status, answer = await root.call("GET", f"report?{query}")
    assert (status, answer["error"]) == (400, "bad_fields"), answer


async def test_only_admins_read_the_report(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    ann = await agent(http, desk_app, "ann")
    status, answer = await ann.call("GET", "report")
    assert (status, answer["error"]) == (403, "admins_only")
    status, answer = await ann.call("GET", "report", token="not-a-session")
    assert (status, answer["error"]) == (401, "unauthenticated")


async def test_notes_never_take_the_place_of_what_the_visitor_sees_again(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, history_replay=4) as app:
        client, customer, ann = await claimed_chat(http, app)
        shown = [m["text"] for m in
                 (await web_customer(http, app, session=client.session)).history]
        for n in range(8):
            await ann.act(customer, "notes", {"text": f"note {n}"})
        again = await web_customer(http, app, session=client.session)
        assert [m["text"] for m in again.history] == shown[-4:]
        await client.close()
        await again.close()


async def test_notes_are_limited_per_conversation_and_nothing_more_is_kept(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    _, customer, ann = await claimed_chat(http, desk_app)
    for n in range(60):
        await ann.act(customer, "notes", {"text": f"note {n}"})
    status, answer = await ann.call("POST", f"conversations/{customer}/notes", {"text": "one more"})
    assert (status, answer["error"]) == (429, "too_many_notes")
    kept = [text for sender, _, text in timeline(await ann.conversation(customer))
            if sender == "note"]
    assert kept == [f"note {n}" for n in range(60)]


async def test_a_conversation_closed_while_it_waited_asks_no_rating_and_counts_nowhere(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    root = await agent(http, desk_app, "root")
    await root.act(client.customer or "", "close")
    frame = await client.next_message()
    assert frame["text"].startswith("root closed this conversation")
    view = await root.conversation(client.customer or "")
    assert "handoff_times" not in view
    assert not any("How did we do?" in e["text"] for e in view["history"])
    status, report = await root.call("GET", "report")
    assert report["overall"]["handled"] == 0
    await client.close()


async def test_a_rating_button_of_an_earlier_close_rates_nothing(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    await ann.act(customer, "close")
    first = (await ann.conversation(customer))["handoff_times"]
    old = [e for e in (await ann.conversation(customer))["history"]
           if e["text"].startswith("How did we do?")][-1]["buttons"][4]["payload"]
    await hand_off(client)
    await ann.act(customer, "claim")
    await ann.act(customer, "close")
    assert (await ann.conversation(customer))["handoff_times"] != first
    [answer] = await client.turn("5", payload=old)
    assert answer["text"] == "That rating has closed, thank you."
    assert "csat" not in await ann.conversation(customer)
    await client.close()
