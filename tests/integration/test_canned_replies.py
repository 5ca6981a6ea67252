"""Canned replies over the agent API (docs/protocol.md "Agent API"): admins
keep them, every agent reads them; against the real app on loopback and a
real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.handoff.canned import MAX_CANNED
from bot.handoff.ports import CannedReply
from tests.support.app_server import RunningApp
from tests.support.handoff_rig import AgentClient, agent, running

GREET = {"shortcut": "greet", "text": "Hi {customer_name}, I'm {agent_name}. How can I help?"}
SHIP = {"shortcut": "ship", "text": "Your order ships within two working days."}
KEY = "segue:canned"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # Keeps the session cookie of a login on 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def listing(client: AgentClient) -> list[dict[str, str]]:
    status, body = await client.call("GET", "canned")
    assert status == 200, body
    return list(body["canned"])


async def test_an_admin_creates_replaces_and_deletes_and_every_agent_reads_them(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    root, ann = await agent(http, desk_app, "root"), await agent(http, desk_app, "ann")
    assert await listing(ann) == []
    assert await root.call("POST", "canned", SHIP) == (200, SHIP)
    assert await root.call("POST", "canned", {"shortcut": " Greet ", "text": "Hello."}) == (
        200, {"shortcut": "greet", "text": "Hello."})
    assert await root.call("POST", "canned", GREET) == (200, GREET)  # replaced
    assert await root.call("POST", "canned", {"shortcut": "a-1_z", "text": "A to Z."}) == (
        200, {"shortcut": "a-1_z", "text": "A to Z."})
    assert await listing(ann) == [{"shortcut": "a-1_z", "text": "A to Z."}, GREET, SHIP]
    assert await redis_client.hgetall(KEY) == {
        "a-1_z": "A to Z.", "greet": GREET["text"], "ship": SHIP["text"]}

    assert await root.call("DELETE", "canned/Greet") == (200, {"deleted": "greet"})
    assert await root.call("DELETE", "canned", {"shortcut": "ship"}) == (200, {"deleted": "ship"})
    for path, body in (("canned/greet", None), ("canned", {"shortcut": "ship"}),
                       ("canned/no%20such", None), ("canned", {"shortcut": "x" * 40})):
        status, answer = await root.call("DELETE", path, body)
        assert (status, answer["error"]) == (404, "not_found"), path
    assert await listing(ann) == [{"shortcut": "a-1_z", "text": "A to Z."}]


async def test_only_admins_change_them(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    root, ann = await agent(http, desk_app, "root"), await agent(http, desk_app, "ann")
    await root.call("POST", "canned", GREET)
    for method, path, body in (("POST", "canned", SHIP), ("POST", "canned", GREET),
                               ("DELETE", "canned/greet", None),
                               ("DELETE", "canned", {"shortcut": "greet"})):
        status, answer = await ann.call(method, path, body)
        assert (status, answer["error"]) == (403, "admins_only"), (method, path)
    assert await redis_client.hgetall(KEY) == {"greet": GREET["text"]}
    for method in ("GET", "POST", "DELETE"):
        status, answer = await ann.call(method, "canned", token="not-a-session")
        assert (status, answer["error"]) == (401, "unauthenticated"), method


@pytest.mark.parametrize(("body", "said"), [
    ({"text": "Hello."}, "'shortcut' must be a string"),
    ({"shortcut": 7, "text": "Hello."}, "'shortcut' must be a string"),
    ({"shortcut": "", "text": "Hello."}, "'shortcut' must be 1-32"),
    ({"shortcut": "two words", "text": "Hello."}, "'shortcut' must be 1-32"),
    ({"shortcut": "/greet", "text": "Hello."}, "'shortcut' must be 1-32"),
    ({"shortcut": "grüße", "text": "Hello."}, "'shortcut' must be 1-32"),
    ({"shortcut": "x" * 33, "text": "Hello."}, "'shortcut' must be 1-32"),
    ({"shortcut": "greet"}, "'text' must be a non-empty string"),
    ({"shortcut": "greet", "text": ["Hello."]}, "'text' must be a non-empty string"),
    ({"shortcut": "greet", "text": ""}, "'text' must be a non-empty string"),
    ({"shortcut": "greet", "text": " \n "}, "'text' must be a non-empty string"),
    ({"shortcut": "greet", "text": "x" * 61}, "longer than 60 characters"),
    ({"shortcut": "greet", "text": "Hi {custmer_name}!"},
     "unknown placeholder {custmer_name} in 'text'"),
    ({"shortcut": "greet", "text": "I'm {agent name}, {Agent_Name} or {agent_name}."},
     "unknown placeholder {agent name}, {Agent_Name} in 'text'"),
], ids=["no-shortcut", "number", "empty", "space", "slash", "non-ascii", "33-long", "no-text",
        "list", "empty-text", "blank-text", "too-long", "typo", "two-typos"])
async def test_bad_fields_are_refused_and_nothing_is_stored(
    http: aiohttp.ClientSession, redis_url: str, redis_client: aioredis.Redis,
    body: dict[str, object], said: str,
) -> None:
    async with running(redis_url, max_text_length=60) as app:
        root = await agent(http, app, "root")
        await root.call("POST", "canned", SHIP)
        status, answer = await root.call("POST", "canned", body)
        assert (status, answer["error"]) == (400, "bad_fields"), answer
        assert said in answer["message"]
        assert await redis_client.hgetall(KEY) == {"ship": SHIP["text"]}


async def test_the_longest_text_a_reply_may_have_is_kept(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, max_text_length=60) as app:
        root = await agent(http, app, "root")
        longest = {"shortcut": "long", "text": "x" * 60}
        assert await root.call("POST", "canned", longest) == (200, longest)


async def test_bad_json_is_refused_and_nothing_is_stored(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    root = await agent(http, desk_app, "root")
    await root.call("POST", "canned", SHIP)
    for method, raw in (("POST", "{"), ("POST", '["greet", "Hello."]'), ("POST", "\"greet\""),
                        ("DELETE", "{"), ("DELETE", "[]")):
        status, answer = await root.call(method, "canned", raw=raw)
        assert (status, answer["error"]) == (400, "bad_json"), (method, raw)
    status, answer = await root.call("DELETE", "canned", {"shortcut": None})
    assert (status, answer["error"]) == (400, "bad_fields")
    assert await redis_client.hgetall(KEY) == {"ship": SHIP["text"]}


async def test_no_new_shortcut_past_the_limit_but_replacing_one_still_works(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    assert desk_app.segue.handoff is not None
    store = desk_app.segue.handoff.agents
    for n in range(MAX_CANNED):
        assert await store.put_canned(CannedReply(f"r{n:03}", f"Reply {n}."), MAX_CANNED)
    root = await agent(http, desk_app, "root")
    status, answer = await root.call("POST", "canned", GREET)
    assert (status, answer["error"]) == (400, "bad_fields")
    assert f"{MAX_CANNED} canned replies already" in answer["message"]
    assert not await redis_client.hexists(KEY, "greet")
    changed = {"shortcut": "r042", "text": "Changed."}
    assert await root.call("POST", "canned", changed) == (200, changed)
    assert await root.call("DELETE", "canned/r000") == (200, {"deleted": "r000"})
    assert await root.call("POST", "canned", GREET) == (200, GREET)
    assert len(await listing(root)) == MAX_CANNED


async def test_cookie_requests_from_another_site_are_refused(
    http: aiohttp.ClientSession, desk_app: RunningApp, redis_client: aioredis.Redis
) -> None:
    root = await agent(http, desk_app, "root")  # sets the cookie in `http`
    await root.call("POST", "canned", SHIP)
    url = f"{desk_app.base_url}/agent/api/canned"
    evil = {"Origin": "https://evil.example"}
    for method, path, body in (("POST", "", GREET), ("DELETE", "/ship", None),
                               ("DELETE", "", {"shortcut": "ship"})):
        async with http.request(method, url + path, json=body, headers=evil) as resp:
            assert resp.status == 403, (method, path)
            assert (await resp.json())["error"] == "bad_origin"
    assert await redis_client.hgetall(KEY) == {"ship": SHIP["text"]}
    # Reading rides on the cookie from anywhere, as every GET of the API does.
    async with http.get(url, headers=evil) as resp:
        assert resp.status == 200
        assert (await resp.json())["canned"] == [SHIP]
    same = {"Origin": desk_app.base_url}
    async with http.post(url, json=GREET, headers=same) as resp:
        assert resp.status == 200
    async with http.delete(f"{url}/ship", headers=same) as resp:
        assert resp.status == 200
    assert await redis_client.hgetall(KEY) == {"greet": GREET["text"]}


async def test_other_methods_on_the_canned_paths_are_not_found(
    http: aiohttp.ClientSession, desk_app: RunningApp
) -> None:
    root = await agent(http, desk_app, "root")
    for method, path in (("PUT", "canned"), ("GET", "canned/greet"), ("POST", "canned/greet"),
                         ("DELETE", "canned/a/b")):
        status, answer = await root.call(method, path, GREET)
        assert (status, answer["error"]) == (404, "not_found"), (method, path)
