"""The agent API (docs/protocol.md "Agent API"): every call and every refusal,
against the real app on loopback, the demo bot and a real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support.app_server import RunningApp
from tests.support.channels_rig import link_code
from tests.support.handoff_rig import (
    AgentClient,
    agent,
    agent_frame,
    claimed_chat,
    hand_off,
    running,
    web_customer,
    wrong_logins,
)
from tests.support.privacy_rig import keyspace, segue_customers


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def queued_customer(http: aiohttp.ClientSession, desk_app: RunningApp) -> str:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    await client.close()
    assert client.customer is not None
    return client.customer


CALLS = [
    ("GET", "me"), ("GET", "agents"), ("GET", "queue"), ("GET", "claimed"), ("POST", "logout"),
    ("GET", "conversations/c1"), ("POST", "conversations/c1/claim"),
    ("POST", "conversations/c1/messages"), ("POST", "conversations/c1/transfer"),
    ("POST", "conversations/c1/release"), ("POST", "conversations/c1/close"),
    ("GET", "customers/c1/export"),
]


async def test_login_gives_a_token_and_an_http_only_cookie(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    url = f"{desk_app.base_url}/agent/api/login"
    async with http.post(url, json={"username": "ann", "password": "ann-pass-1"}) as resp:
        assert resp.status == 200
        body = await resp.json()
        cookie = resp.cookies["segue_agent"]
    assert body["agent"] == {"username": "ann", "name": "ann", "role": "agent"}
    assert cookie.value == body["token"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    # The cookie alone opens the API (the browser's way) ...
    async with http.get(f"{desk_app.base_url}/agent/api/me") as resp:
        assert resp.status == 200 and (await resp.json())["agent"]["username"] == "ann"
    # ... and so does the bearer token alone.
    async with aiohttp.ClientSession() as bare:
        status, me = await AgentClient(bare, desk_app.base_url).call("GET", "me",
                                                                     token=body["token"])
    assert status == 200 and me["agent"]["role"] == "agent"


async def test_login_refusals(http: aiohttp.ClientSession, desk_app: RunningApp) -> None:
    client = AgentClient(http, desk_app.base_url)
    status, body = await client.call("POST", "login", raw="{not json")
    assert (status, body["error"]) == (400, "bad_json")
    # Nested deeper than the parser goes: bad JSON, not a server error.
    for raw in ("[" * 100_000, '{"a":' * 100_000):
        status, body = await client.call("POST", "login", raw=raw)
        assert (status, body["error"]) == (400, "bad_json")
    # A lone surrogate is not text any password hash can take.
    status, body = await client.call(
        "POST", "login", raw='{"username": "ann", "password": "\\ud800"}')
    assert (status, body["error"]) == (400, "bad_json")
    status, body = await client.call("POST", "login", {"username": "ann"})
    assert (status, body["error"]) == (400, "bad_fields")
    status, body = await client.call("POST", "login", {"username": "ann", "password": "nope"})
    assert (status, body["error"]) == (401, "bad_credentials")
    status, body = await client.call("POST", "login", {"username": "zoe", "password": "x"})
    assert (status, body["error"]) == (401, "bad_credentials")


async def test_failed_logins_are_limited_per_username(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, agent_login_max_failures=3) as desk_app:
        client = AgentClient(http, desk_app.base_url)
        await wrong_logins(client, ["ann"] * 3)
        async with http.post(f"{desk_app.base_url}/agent/api/login",
                             json={"username": "ann", "password": "ann-pass-1"}) as resp:
            assert resp.status == 429  # even the right password, until its delay ends
            assert int(resp.headers["Retry-After"]) > 0
            assert (await resp.json())["error"] == "too_many_logins"
        await client.login("bob")  # another account is not slowed down


async def test_concurrent_guesses_are_counted_before_they_are_checked(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = AgentClient(http, desk_app.base_url)  # 5 per username and address, then delays
    guesses = [client.call("POST", "login", {"username": "ann", "password": f"guess-{n}"})
               for n in range(60)]
    statuses = [status for status, _ in await asyncio.gather(*guesses)]
    assert (statuses.count(401), statuses.count(429)) == (5, 55)
    status, body = await client.call("POST", "login",
                                     {"username": "ann", "password": "ann-pass-1"})
    assert (status, body["error"]) == (429, "too_many_logins")


async def test_failed_logins_are_limited_per_client_address(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, agent_login_max_failures_per_address=4) as desk_app:
        client = AgentClient(http, desk_app.base_url)
        await wrong_logins(client, ["ann", "bob", "root", "zoe"])
        status, body = await client.call("POST", "login",
                                         {"username": "ann", "password": "ann-pass-1"})
        assert (status, body["error"]) == (429, "too_many_logins")


@pytest.mark.parametrize(("method", "path"), CALLS)
async def test_every_call_needs_a_live_session(
    http: aiohttp.ClientSession, desk_app: RunningApp, method: str, path: str
) -> None:
    client = AgentClient(http, desk_app.base_url)
    status, body = await client.call(method, path, {})
    assert (status, body["error"]) == (401, "unauthenticated")
    status, body = await client.call(method, path, {}, token="made-up-token")
    assert (status, body["error"]) == (401, "unauthenticated")


async def test_an_expired_session_is_refused(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    ann = await agent(http, desk_app, "ann")
    assert (await ann.call("GET", "queue"))[0] == 200
    handoff = desk_app.segue.handoff
    assert handoff is not None
    real_clock = handoff.auth.clock
    handoff.auth.clock = lambda: real_clock() + 13 * 3600  # the default session lasts 12 h
    status, body = await ann.call("GET", "queue")
    assert (status, body["error"]) == (401, "unauthenticated")
    assert "expired" in body["message"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ann.listen()
    assert refused.value.status == 401


async def test_logout_ends_the_session_and_its_live_socket(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    ann = await (await agent(http, desk_app, "ann")).listen()
    assert (await ann.call("POST", "logout"))[0] == 200
    assert ann.ws is not None
    closing = await ann.ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ann.ws.close_code == 4401
    assert (await ann.call("GET", "me"))[0] == 401


async def test_cookie_requests_from_another_site_are_refused(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    await agent(http, desk_app, "ann")  # sets the cookie in `http`
    customer = await queued_customer(http, desk_app)
    url = f"{desk_app.base_url}/agent/api/conversations/{customer}/claim"
    async with http.post(url, headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403 and (await resp.json())["error"] == "bad_origin"
    async with http.post(url, headers={"Origin": desk_app.base_url}) as resp:
        assert resp.status == 200


async def test_queue_view_claim_reply_release(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    ann = await (await agent(http, desk_app, "ann")).listen()
    customer = await web_customer(http, desk_app)
    said, notice = await hand_off(customer)
    assert "person" in said["text"] and notice["text"] == "You're next in line."
    queued = await ann.event("queued")
    assert queued["customer"] == customer.customer

    status, queue = await ann.call("GET", "queue")
    assert status == 200
    assert [q["customer"] for q in queue] == [customer.customer]
    assert queue[0]["channel"] == "web"
    assert (await ann.call("GET", "claimed"))[1] == []
    view = await ann.conversation(customer.customer or "")
    assert view["handoff"]["status"] == "queued"
    assert [e["text"] for e in view["history"]][:1] == ["talk to a human"]
    assert view["channels"] == [{"channel": "web", "user_id": view["channels"][0]["user_id"]}]

    claimed = await ann.act(customer.customer or "", "claim")
    assert claimed["handoff"]["agent"] == "ann"
    joined = await agent_frame(customer)
    assert joined["text"] == "ann from our team has joined the conversation."
    assert (await ann.call("GET", "claimed"))[1] == [
        {"customer": customer.customer, "agent": "ann"}]
    assert (await ann.call("GET", "queue"))[1] == []

    # While a person holds it, the bot is silent and the message goes to the agent live.
    assert await customer.turn("my parcel never came", expect=0) == []
    live = await ann.event("message", text="my parcel never came")
    assert live["entry"]["channel"] == "web" and live["entry"]["sender"] == "customer"

    answer = await ann.act(customer.customer or "", "messages", {"text": "Let me check."})
    assert answer["delivered"] and answer["channel"] == "web"
    frame = await agent_frame(customer)
    assert (frame["text"], frame["agent_name"]) == ("Let me check.", "ann")
    assert "reply_to" not in frame

    released = await ann.act(customer.customer or "", "release")
    assert released["handoff"] is None
    back = await customer.receive()
    assert back["sender"] == "bot" and "back with our assistant" in back["text"]
    [greeting] = await customer.turn("hello")
    assert "order" in greeting["text"]
    assert (await ann.call("GET", "queue"))[1] == []
    assert (await ann.call("GET", "claimed"))[1] == []
    await customer.close()
    await ann.close()


async def test_nobody_online_tells_business_hours_and_the_queue_counts_ahead(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    first = await web_customer(http, desk_app)
    _, notice = await hand_off(first)
    assert "No agent is online" in notice["text"] and "Mon-Fri 9-17 CET" in notice["text"]
    ann = await (await agent(http, desk_app, "ann")).listen()
    second = await web_customer(http, desk_app)
    _, notice = await hand_off(second)
    assert notice["text"] == "1 person is waiting ahead of you."
    for client in (first, second, ann):
        await client.close()


async def test_claimed_by_another_and_wrong_agent(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    customer = await queued_customer(http, desk_app)
    ann, bob, root = [await agent(http, desk_app, n) for n in ("ann", "bob", "root")]
    await ann.act(customer, "claim")
    status, body = await bob.call("POST", f"conversations/{customer}/claim")
    assert (status, body["error"]) == (409, "already_claimed")
    assert "ann" in body["message"]
    # Anyone may read it; only ann (or an admin) may act on it.
    assert (await bob.conversation(customer))["handoff"]["agent"] == "ann"
    for method, action, payload in [("POST", "/messages", {"text": "hi"}),
                                    ("POST", "/release", None), ("POST", "/close", None),
                                    ("POST", "/transfer", {"agent": "bob"})]:
        status, body = await bob.call(method, f"conversations/{customer}{action}", payload)
        assert (status, body["error"]) == (403, "not_yours"), action
    # An admin may act on any conversation; the claim stays with ann.
    assert (await root.conversation(customer))["handoff"]["agent"] == "ann"
    await root.act(customer, "messages", {"text": "Supervisor here."})
    assert (await root.conversation(customer))["handoff"]["agent"] == "ann"
    status, body = await root.call("POST", f"conversations/{customer}/claim")
    assert (status, body["error"]) == (409, "already_claimed")
    # Claiming one's own conversation again changes nothing.
    assert (await ann.act(customer, "claim"))["handoff"]["agent"] == "ann"


async def test_conversations_not_handed_off_are_read_only_but_for_admins(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await web_customer(http, desk_app)
    await client.turn("hello")
    customer = client.customer or ""
    ann, root = await agent(http, desk_app, "ann"), await agent(http, desk_app, "root")
    view = await ann.conversation(customer)
    assert view["handoff"] is None and [e["text"] for e in view["history"]][0] == "hello"
    for method, action in [("POST", "/claim"), ("POST", "/release")]:
        status, body = await ann.call(method, f"conversations/{customer}{action}")
        assert (status, body["error"]) == (403, "not_in_queue")
    status, body = await root.call("POST", f"conversations/{customer}/release")
    assert (status, body["error"]) == (409, "not_handed_off")
    assert (await root.conversation(customer))["handoff"] is None
    await root.act(customer, "claim")  # an admin takes over a bot conversation
    assert (await agent_frame(client))["agent_name"] == "root"
    assert await client.turn("anyone there?", expect=0) == []
    await client.close()


async def test_unknown_customers_are_404_and_nothing_is_stored(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    root = await agent(http, desk_app, "root")
    before = {key async for key in redis_client.scan_iter("segue:{c:*")}
    for customer in ("0123456789abcdef", "no.such", "x" * 65):
        for method, action in [("GET", ""), ("POST", "/claim"), ("POST", "/release"),
                               ("POST", "/close")]:
            status, body = await root.call(method, f"conversations/{customer}{action}")
            assert (status, body["error"]) == (404, "unknown_customer"), (customer, action)
        status, body = await root.call("POST", f"conversations/{customer}/messages",
                                       {"text": "hello?"})
        assert (status, body["error"]) == (404, "unknown_customer")
    status, body = await root.call("GET", "conversations/no%7Bsuch%7D")
    assert (status, body["error"]) == (404, "not_found")
    assert {key async for key in redis_client.scan_iter("segue:{c:*")} == before


async def test_customers_gone_from_the_store_leave_the_lists_and_no_keys(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    waiting = await queued_customer(http, desk_app)
    held = await queued_customer(http, desk_app)
    root = await agent(http, desk_app, "root")
    await root.act(held, "claim")
    for customer in (waiting, held):  # erased, or expired by the retention setting
        await desk_app.segue.store.erase(customer)
    assert (await root.call("GET", "queue"))[1] == []
    assert (await root.call("GET", "claimed"))[1] == []
    for key in ("segue:{handoff}:queue", "segue:{handoff}:claims"):
        assert not await redis_client.exists(key)
    left = [key async for key in redis_client.scan_iter("segue:*")
            if waiting in key or held in key]
    assert left and all([await redis_client.ttl(key) > 0 for key in left])


async def test_bad_json_and_bad_fields_store_nothing(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    customer = await queued_customer(http, desk_app)
    ann = await agent(http, desk_app, "ann")
    await ann.act(customer, "claim")
    before = (await ann.conversation(customer))["history"]
    path = f"conversations/{customer}/messages"
    for raw, error in [("{nope", "bad_json"), ("[1, 2]", "bad_json"), ('{"text": 5}', "bad_text"),
                       ('{"text": "   "}', "bad_text"), ('{"txt": "hi"}', "bad_text"),
                       ('{"text": "' + "x" * 5000 + '"}', "bad_text"),
                       ("[" * 100_000, "bad_json")]:
        status, body = await ann.call("POST", path, raw=raw)
        assert (status, body["error"]) == (400, error), raw
    for raw in ("{", "[" * 100_000):
        status, body = await ann.call("POST", f"conversations/{customer}/transfer", raw=raw)
        assert (status, body["error"]) == (400, "bad_json")
    status, body = await ann.call("POST", f"conversations/{customer}/transfer", {"agent": "zoe"})
    assert (status, body["error"]) == (400, "unknown_agent")
    assert (await ann.conversation(customer))["history"] == before


async def test_a_reply_that_is_not_text_is_refused_while_the_customer_is_online(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    before = (await ann.conversation(customer))["history"]
    status, body = await ann.call("POST", f"conversations/{customer}/messages",
                                  raw='{"text": "bad \\ud800"}')
    assert (status, body["error"]) == (400, "bad_json")
    assert (await ann.conversation(customer))["history"] == before
    await client.close()


async def test_transfer_moves_the_conversation_to_another_agent(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    bob = await (await agent(http, desk_app, "bob")).listen()
    await agent_frame(client)
    moved = await ann.act(customer, "transfer", {"agent": "bob"})
    assert moved["handoff"]["agent"] == "bob"
    event = await bob.event("transferred")
    assert (event["customer"], event["agent"], event["from"]) == (customer, "bob", "ann")
    told = await agent_frame(client)
    assert told["text"] == "bob from our team is taking over this conversation."
    assert (await ann.call("POST", f"conversations/{customer}/messages", {"text": "x"}))[0] == 403
    await bob.act(customer, "messages", {"text": "Hi, Bob here."})
    assert (await agent_frame(client))["agent_name"] == "bob"
    await client.close()
    await bob.close()


async def test_close_ends_the_handoff_and_the_bot_starts_afresh(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await web_customer(http, desk_app)
    await client.turn("where is my order")
    await client.turn("/agent", expect=2)
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    await ann.act(customer, "claim")
    await agent_frame(client)
    assert (await ann.act(customer, "close"))["handoff"] is None
    told = await client.receive()
    assert told["text"].startswith("ann closed this conversation.")
    # The order question was dropped: nonsense is not taken as a wrong order number.
    [reply] = await client.turn("blorp")
    assert reply["text"].startswith("Sorry, I didn't get that.")
    await client.close()


async def test_release_returns_to_the_flow_where_it_was(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    client = await web_customer(http, desk_app)
    [question] = await client.turn("where is my order")
    asked, notice = await client.turn("/agent", expect=2)
    assert asked["text"].startswith("A person from our team")
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    await ann.act(customer, "claim")
    await agent_frame(client)
    await ann.act(customer, "release")
    back, where = await client.receive(), await client.receive()
    assert "back with our assistant" in back["text"]
    assert where["text"] == f"Where we left off: {question['text']}"
    [status] = await client.turn("A1001")
    assert "shipped" in status["text"]
    await client.close()


async def test_the_console_page_is_served_with_a_strict_policy(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    async with http.get(f"{desk_app.base_url}/agent/") as resp:
        assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        assert "script-src" not in resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        page = await resp.text()
    assert 'src="app.js"' in page
    async with http.get(f"{desk_app.base_url}/agent/app.js") as resp:
        assert resp.status == 200 and "javascript" in resp.headers["Content-Type"]
        script = await resp.text()
    assert "innerHTML" not in script and "textContent" in script
    async with http.get(f"{desk_app.base_url}/agent", allow_redirects=False) as resp:
        assert resp.status == 308 and resp.headers["Location"] == "/agent/"


# Exports of a customer's data (subject access requests).

async def test_an_admin_exports_everything_kept_as_the_command_prints_it(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_url: str,
    redis_client: aioredis.Redis,
) -> None:
    customer = await web_customer(http, desk_app)
    await hand_off(customer)
    code = link_code((await customer.turn("link"))[0]["text"])
    other = await web_customer(http, desk_app)
    await other.turn("hello")
    await other.turn(f"link {code}")
    await other.turn("yes", expect=2)
    await customer.close()
    await other.close()
    root = await agent(http, desk_app, "root")
    before = await keyspace(redis_client)
    status, document = await root.call("GET", f"customers/{customer.customer}/export")
    assert status == 200, document
    assert document["customer"] == customer.customer
    assert document["merged"] == [other.customer]
    assert [i["channel"] for i in document["identities"]] == ["web", "web"]
    assert set(document["addresses"]) == {"web"}
    assert document["handoff"]["status"] == "queued"
    assert document["conversation"]["turns"] == 2
    texts = [entry["text"] for entry in document["history"]]
    assert texts[0] == "talk to a human" and "hello" in texts and f"link {code}" in texts
    ran = await segue_customers("export", customer.customer or "", redis_url=redis_url)
    assert ran.status == 0, ran.err
    assert json.loads(ran.out) == document
    # Reading changed nothing.
    assert await keyspace(redis_client) == before


async def test_only_admins_export_and_only_customers_that_exist(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    customer = await queued_customer(http, desk_app)
    path = f"customers/{customer}/export"
    before = await keyspace(redis_client)
    status, body = await AgentClient(http, desk_app.base_url).call("GET", path)
    assert (status, body["error"]) == (401, "unauthenticated")
    ann = await agent(http, desk_app, "ann")
    status, body = await ann.call("GET", path)
    assert (status, body["error"]) == (403, "admins_only")
    root = await agent(http, desk_app, "root")
    for unknown in ("0123456789abcdef", "no.such", "x" * 65):
        status, body = await root.call("GET", f"customers/{unknown}/export")
        assert (status, body["error"]) == (404, "unknown_customer"), unknown
    status, body = await root.call("POST", path)
    assert (status, body["error"]) == (404, "not_found")
    # Logins write their sessions; nothing of the customer changed.
    after = await keyspace(redis_client)
    assert {k: v for k, v in after.items() if "agent" not in k} == \
        {k: v for k, v in before.items() if "agent" not in k}


async def test_what_agents_do_is_logged_by_name_and_customer_never_with_the_text(
    http: aiohttp.ClientSession, desk_app: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.agent_api")
    client, customer, ann = await claimed_chat(http, desk_app)
    await ann.act(customer, "messages", {"text": "a private answer"})
    await agent_frame(client)
    await ann.act(customer, "release")
    await client.close()
    said = [r.getMessage() for r in caplog.records if r.name == "connectors.agent_api"]
    assert said == ["agent ann logged in from 127.0.0.1",
                    f"agent ann claimed customer {customer}",
                    f"agent ann answered customer {customer}",
                    f"agent ann gave customer {customer} back to the bot"]
    assert "a private answer" not in caplog.text
