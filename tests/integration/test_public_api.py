"""The public API (`/api/v1`) against the real app: web chat, Telegram in
webhook mode against the local Bot API fake, Slack against the local Web
API fake, the shipped demo bot, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bot.outreach.keys import ApiKeys
from tests.fakes.telegram_api import BLOCKED, CUSTOMER
from tests.support.channels_rig import SLACK_USER, ChannelsRig, channels_rig
from tests.support.handoff_rig import claimed_chat
from tests.support.webchat_client import WebChatClient
from tests.support.workspace_rig import signed_identity

API = "/api/v1"
ORDER_QUESTION = "What is your order number? It looks like A1001."


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[ChannelsRig]:
    async with channels_rig(redis_url) as running:
        yield running


async def key(rig: ChannelsRig, name: str = "shop", scope: str = "notify") -> str:
    _, secret = await ApiKeys(rig.segue.store.agent_store()).add(name, scope)
    return secret


async def call(rig: ChannelsRig, method: str, path: str, secret: str | None,
               body: Any = None, **params: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
    async with rig.http.request(method, f"{rig.app.base_url}{API}{path}", json=body,
                                params=params, headers=headers) as answer:
        return answer.status, await answer.json()


async def send(rig: ChannelsRig, secret: str, customer: str, text: str, idem: str,
               **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {"text": text, "idempotency_key": idem, **extra}
    return await call(rig, "POST", f"/customers/{customer}/messages", secret, body)


async def telegram_customer(rig: ChannelsRig) -> str:
    await rig.telegram_says("hello")
    await rig.telegram_sent(1)
    secret = await key(rig, "finder", "read")
    status, found = await call(rig, "GET", "/customers", secret, channel="telegram",
                               user_id=str(CUSTOMER["id"]))
    assert status == 200, found
    assert found["channels"] == ["telegram"] and found["last_channel"] == "telegram"
    return str(found["customer"])


def sent_count(channel: str, status: str) -> float:
    """What /metrics counts as segue_api_messages_total{channel, status}."""
    return REGISTRY.get_sample_value("segue_api_messages_total",
                                     {"channel": channel, "status": status}) or 0.0


async def closed_web_customer(rig: ChannelsRig) -> str:
    """A web chat customer who said hello and closed the chat."""
    client = await WebChatClient.connect(rig.http, rig.app.ws_url)
    await client.turn("hello")
    await client.close()
    assert client.customer is not None
    return client.customer


async def history_texts(rig: ChannelsRig, customer: str) -> list[str]:
    return [e.text for e in await rig.segue.store.history(customer, 100)]


async def test_a_customer_last_on_telegram_gets_the_message_there_once_per_key(
    rig: ChannelsRig,
) -> None:
    customer = await telegram_customer(rig)
    secret = await key(rig)
    status, sent = await send(rig, secret, customer, "Your order A1001 has shipped.", "ship-1",
                              buttons=[{"title": "Track it", "payload": "order_status"}])
    assert status == 201, sent
    assert (sent["channel"], sent["status"], sent["duplicate"]) == ("telegram", "sent", False)
    [delivered] = (await rig.telegram.wait_for("sendMessage", 2))[1:]
    assert delivered.params["text"] == "Your order A1001 has shipped."
    assert delivered.params["chat_id"] == str(CUSTOMER["id"])
    assert "Track it" in delivered.params["reply_markup"]
    # The same key again within a day: the first answer, nothing sent or kept again.
    status, again = await send(rig, secret, customer, "Your order A1001 has shipped.",
                               "ship-1",
                               buttons=[{"title": "Track it", "payload": "order_status"}])
    assert status == 200 and again["duplicate"] is True
    assert again["message"] == sent["message"]
    status, _ = await send(rig, secret, customer, "It arrives tomorrow.", "ship-2")
    assert status == 201
    await rig.telegram.wait_for("sendMessage", 3)
    assert rig.telegram.texts_sent()[1:] == ["Your order A1001 has shipped.",
                                             "It arrives tomorrow."]
    assert (await history_texts(rig, customer))[-2:] == ["Your order A1001 has shipped.",
                                                         "It arrives tomorrow."]


async def test_the_same_key_of_another_api_key_is_another_message(rig: ChannelsRig) -> None:
    customer = await telegram_customer(rig)
    shop, crm = await key(rig, "shop"), await key(rig, "crm")
    assert (await send(rig, shop, customer, "From the shop.", "n-1"))[0] == 201
    assert (await send(rig, crm, customer, "From the CRM.", "n-1"))[0] == 201
    await rig.telegram.wait_for("sendMessage", 3)
    assert rig.telegram.texts_sent()[1:] == ["From the shop.", "From the CRM."]


async def test_a_customer_on_a_closed_web_chat_sees_the_message_on_their_next_visit(
    rig: ChannelsRig,
) -> None:
    client = await WebChatClient.connect(rig.http, rig.app.ws_url)
    await client.turn("hello")
    session, customer = client.session, client.customer
    assert customer is not None
    await client.close()
    secret = await key(rig)
    status, sent = await send(rig, secret, customer, "An agent answered your question.",
                              "web-1")
    assert status == 201, sent
    assert (sent["channel"], sent["status"]) == ("web", "on_next_open")
    again = await WebChatClient.connect(rig.http, rig.app.ws_url, session=session)
    try:
        assert again.customer == customer
        assert again.history[-1]["text"] == "An agent answered your question."
        assert again.history[-1]["sender"] == "bot"
    finally:
        await again.close()


async def test_an_open_web_chat_gets_it_at_once_and_an_answer_continues_the_flow(
    rig: ChannelsRig,
) -> None:
    client = await WebChatClient.connect(rig.http, rig.app.ws_url)
    try:
        await client.turn("hello")
        assert client.customer is not None
        secret = await key(rig)
        status, started = await call(rig, "POST", f"/customers/{client.customer}/flows/"
                                     "order_status", secret, {})
        assert status == 201, started
        assert (started["channel"], started["status"]) == ("web", "sent")
        asked = await client.next_message()
        assert asked["text"] == ORDER_QUESTION and "reply_to" not in asked
        replies = await client.turn("A1001", expect=2)
        assert replies[0]["text"].startswith("Order A1001 is shipped.")
    finally:
        await client.close()


async def test_the_business_asks_for_a_delivery_slot_and_the_customer_picks_one(
    rig: ChannelsRig,
) -> None:
    client = await WebChatClient.connect(rig.http, rig.app.ws_url)
    try:
        await client.turn("hello")
        secret = await key(rig)
        status, started = await call(rig, "POST", f"/customers/{client.customer}/flows/"
                                     "delivery_slot", secret, {"slots": {"order_id": "a1002"}})
        assert status == 201, started
        asked = await client.next_message()
        assert asked["text"] == ("Your order A1002 is ready to ship. When should we deliver "
                                 "it tomorrow?")
        assert [b["payload"] for b in asked["buttons"]] == ["morning", "afternoon", "evening"]
        [booked] = await client.turn("Afternoon", payload="afternoon")
        assert booked["text"] == "Done — order A1002 will arrive tomorrow (afternoon)."
    finally:
        await client.close()


async def test_a_flow_started_with_its_slot_answers_at_once_and_once_per_key(
    rig: ChannelsRig,
) -> None:
    customer = await telegram_customer(rig)
    secret = await key(rig)
    body = {"slots": {"order_id": "a1003"}, "idempotency_key": "look-1"}
    status, started = await call(rig, "POST", f"/customers/{customer}/flows/order_status",
                                 secret, body)
    assert status == 201 and started["duplicate"] is False, started
    texts = [m["text"] for m in started["messages"]]
    assert texts[0].startswith("Order A1003 is delivered.")
    await rig.telegram.wait_for("sendMessage", 1 + len(texts))
    status, again = await call(rig, "POST", f"/customers/{customer}/flows/order_status",
                               secret, body)
    assert status == 200 and again["duplicate"] is True
    assert again["messages"] == started["messages"]
    # Without the key the flow starts again: the probe's answer comes right after.
    status, _ = await call(rig, "POST", f"/customers/{customer}/flows/order_status",
                           secret, {"slots": {"order_id": "A1001"}})
    assert status == 201
    await rig.telegram.wait_for("sendMessage", 1 + 2 * len(texts))
    sent = rig.telegram.texts_sent()[1:]
    assert sent[:len(texts)] == texts and sent[len(texts)].startswith("Order A1001 is shipped.")
    assert len(sent) == 2 * len(texts)


async def test_bad_flows_and_slots_are_refused_and_nothing_is_kept(rig: ChannelsRig) -> None:
    customer = await telegram_customer(rig)
    before = await history_texts(rig, customer)
    secret = await key(rig)
    for flow, body, status_code, code in [
        ("no_such_flow", {}, 404, "unknown_flow"),
        ("forget_me", {}, 404, "unknown_flow"),
        ("order_status", {"slots": {"order_id": "not-an-order"}}, 400, "bad_slots"),
        ("order_status", {"slots": {"colour": "red"}}, 400, "bad_slots"),
        ("order_status", {"slots": ["order_id"]}, 400, "bad_slots"),
        ("order_status", {"slots": []}, 400, "bad_slots"),
        ("order_status", {"slots": {"order_id": 1001}}, 400, "bad_slots"),
        ("order_status", {"slot": {}}, 400, "bad_request"),
        ("order_status", {"channel": "fax"}, 400, "bad_channel"),
        ("order_status", {"idempotency_key": ""}, 400, "bad_idempotency_key"),
        ("order_status", [], 400, "bad_request"),
    ]:
        status, answer = await call(rig, "POST", f"/customers/{customer}/flows/{flow}",
                                    secret, body)
        assert (status, answer["error"]) == (status_code, code), (flow, body, answer)
    assert await history_texts(rig, customer) == before
    assert len(rig.telegram.sent()) == 1


async def test_a_customer_who_never_started_the_telegram_bot_is_told_why(
    rig: ChannelsRig,
) -> None:
    customer = await closed_web_customer(rig)
    secret = await key(rig)
    status, refused = await send(rig, secret, customer, "Hi on Telegram", "tg-1",
                                 channel="telegram")
    assert status == 409 and refused["error"] == "unreachable"
    assert "never written to the bot on Telegram" in refused["reasons"]["telegram"]
    # Automatic: the web chat keeps it for the next visit instead.
    status, sent = await send(rig, secret, customer, "Hi on Telegram", "tg-1")
    assert status == 201 and sent["channel"] == "web"
    assert rig.telegram.sent() == []


async def test_a_customer_last_on_slack_gets_a_dm(rig: ChannelsRig) -> None:
    await rig.slack_says("hello")
    await rig.slack_posts(1)
    secret = await key(rig, "finder", "admin")
    status, found = await call(rig, "GET", "/customers", secret, channel="slack",
                               user_id=SLACK_USER, team_id="T061EG9R6")
    assert status == 200, found
    customer = found["customer"]
    status, sent = await send(rig, secret, customer, "Your invoice is ready.", "inv-1")
    assert status == 201 and sent["channel"] == "slack", sent
    posted = await rig.slack.wait_posted(2)
    assert posted[-1]["text"] == "Your invoice is ready."


async def test_a_telegram_user_who_blocked_the_bot_is_reported_as_refused(
    rig: ChannelsRig,
) -> None:
    customer = await telegram_customer(rig)
    rig.telegram.forbid(int(CUSTOMER["id"]), BLOCKED)
    secret = await key(rig)
    status, sent = await send(rig, secret, customer, "Anyone there?", "b-1")
    assert status == 201 and (sent["channel"], sent["status"]) == ("telegram", "refused")
    assert "blocked" in sent["reason"]


async def test_a_signed_in_visitor_is_found_by_the_host_sites_user_id(
    rig: ChannelsRig,
) -> None:
    client = await WebChatClient.connect(rig.http, rig.app.ws_url,
                                         identity=signed_identity("shop-user-77"))
    try:
        await client.turn("hello")
        secret = await key(rig, "finder", "read")
        status, found = await call(rig, "GET", "/customers", secret,
                                   external_id="shop-user-77")
        assert status == 200, found
        assert (found["customer"], found["channels"]) == (client.customer, ["web"])
        status, refused = await call(rig, "GET", "/customers", secret, external_id="other")
        assert (status, refused["error"]) == (404, "unknown_customer")
    finally:
        await client.close()


async def test_while_an_agent_holds_the_chat_the_message_reaches_their_console_and_the_answer_them(
    rig: ChannelsRig,
) -> None:
    client, customer, holder = await claimed_chat(rig.http, rig.app)
    try:
        joined = await client.next_message()
        assert joined["text"] == "ann from our team has joined the conversation."
        await holder.listen()
        secret = await key(rig)
        status, sent = await send(rig, secret, customer, "Your refund was approved.", "r-1")
        assert status == 201 and sent["status"] == "sent", sent
        assert (await client.next_message())["text"] == "Your refund was approved."
        live = await holder.event("message", text="Your refund was approved.")
        assert live["customer"] == customer and live["entry"]["sender"] == "bot"
        await client.say("Thanks, when will it arrive?")
        answer = await holder.event("message", text="Thanks, when will it arrive?")
        assert answer["entry"]["sender"] == "customer"
        # A person has the conversation: no flow may be started under them.
        status, refused = await call(rig, "POST", f"/customers/{customer}/flows/order_status",
                                     secret, {})
        assert (status, refused["error"]) == (409, "handed_off")
    finally:
        await holder.close()
        await client.close()


async def test_a_flow_that_asks_for_a_person_queues_the_conversation(rig: ChannelsRig) -> None:
    customer = await telegram_customer(rig)
    listener = await (await rig.agent("ann")).listen()
    try:
        secret = await key(rig)
        status, started = await call(rig, "POST", f"/customers/{customer}/flows/human",
                                     secret)
        assert status == 201, started
        queued = await listener.event("queued")
        assert queued["customer"] == customer
        status, queue = await listener.call("GET", "queue")
        assert [item["customer"] for item in queue] == [customer]
        # The customer hears what a customer asking for a person hears.
        texts = [m["text"] for m in started["messages"]]
        assert texts == ["Sure, a person from our team will take over this conversation "
                         "shortly.", "You're next in line."]
        await rig.telegram.wait_for("sendMessage", 3)
        assert rig.telegram.texts_sent()[1:] == texts
    finally:
        await listener.close()


async def test_keys_scopes_and_revocation(rig: ChannelsRig) -> None:
    customer = await telegram_customer(rig)
    reader = await key(rig, "reader", "read")
    status, refused = await send(rig, reader, customer, "Hi", "s-1")
    assert status == 403 and refused["error"] == "forbidden"
    assert (await call(rig, "GET", f"/customers/{customer}", reader))[0] == 200
    notifier = await key(rig, "notifier")
    keys = ApiKeys(rig.segue.store.agent_store())
    assert await keys.revoke("notifier")
    for secret in (notifier, None, "not-a-key", reader + "x"):
        status, refused = await send(rig, secret or "", customer, "Hi", "s-2") \
            if secret is not None else await call(rig, "POST", f"/customers/{customer}/"
                                                  "messages", None, {"text": "Hi"})
        assert status == 401 and refused["error"] == "unauthorized", secret
    assert len(rig.telegram.sent()) == 1


async def test_bad_requests_are_refused_and_store_nothing(rig: ChannelsRig) -> None:
    customer = await telegram_customer(rig)
    before = await history_texts(rig, customer)
    secret = await key(rig)
    cases: list[tuple[Any, str]] = [
        ({"text": "Hi"}, "bad_idempotency_key"),
        ({"text": "", "idempotency_key": "k"}, "bad_text"),
        ({"text": "x" * 5000, "idempotency_key": "k"}, "bad_text"),
        ({"text": "Hi", "idempotency_key": "k", "channel": "fax"}, "bad_channel"),
        ({"text": "Hi", "idempotency_key": "k", "buttons": [{"title": ""}]}, "bad_buttons"),
        ({"text": "Hi", "idempotency_key": "k", "surprise": 1}, "bad_request"),
        (["Hi"], "bad_request"),
    ]
    for body, code in cases:
        status, refused = await call(rig, "POST", f"/customers/{customer}/messages", secret,
                                     body)
        assert (status, refused["error"]) == (400, code), body
    status, refused = await send(rig, secret, "no-such-customer", "Hi", "k")
    assert (status, refused["error"]) == (404, "unknown_customer")
    for params in ({}, {"channel": "telegram"}, {"channel": "fax", "user_id": "1"},
                   {"external_id": "x", "channel": "web"}):
        status, refused = await call(rig, "GET", "/customers", secret, **params)
        assert (status, refused["error"]) == (400, "bad_query"), params
    status, refused = await call(rig, "GET", "/customers", secret, channel="telegram",
                                 user_id="404")
    assert (status, refused["error"]) == (404, "unknown_customer")
    assert await history_texts(rig, customer) == before
    assert len(rig.telegram.sent()) == 1


async def test_one_customer_gets_at_most_30_messages_an_hour_and_one_key_600_calls_a_minute(
    rig: ChannelsRig,
) -> None:
    customer = await closed_web_customer(rig)
    secret = await key(rig)
    kept_before = sent_count("web", "on_next_open")
    for number in range(30):
        status, sent = await send(rig, secret, customer, f"Note {number}", f"n-{number}")
        assert (status, sent["status"]) == (201, "on_next_open"), sent
    async with rig.http.post(f"{rig.app.base_url}{API}/customers/{customer}/messages",
                             json={"text": "One too many", "idempotency_key": "n-30"},
                             headers={"Authorization": f"Bearer {secret}"}) as answer:
        assert (answer.status, (await answer.json())["error"]) == (429, "too_many_messages")
        assert answer.headers["Retry-After"] == "3600"
    assert sent_count("web", "on_next_open") == kept_before + 30
    # A repeated key is answered from what was kept, limit or not.
    assert (await send(rig, secret, customer, "Note 0", "n-0"))[0] == 200
    assert "One too many" not in await history_texts(rig, customer)
    reader = await key(rig, "reader", "read")
    for _ in range(600):
        assert (await call(rig, "GET", f"/customers/{customer}", reader))[0] == 200
    status, limited = await call(rig, "GET", f"/customers/{customer}", reader)
    assert (status, limited["error"]) == (429, "rate_limited")
    # Another key is counted apart.
    assert (await call(rig, "GET", f"/customers/{customer}", secret))[0] == 200


async def test_review_findings_are_refused_cleanly_and_store_nothing(rig: ChannelsRig) -> None:
    customer = await telegram_customer(rig)
    before = await history_texts(rig, customer)
    secret = await key(rig)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    url = f"{rig.app.base_url}{API}/customers/{customer}"
    # A lone surrogate escape is JSON, but no text: 400, never a 500.
    for raw in ('{"text":"\\ud800","idempotency_key":"s"}',
                '{"text":"hi","idempotency_key":"\\udfff"}',
                '[' * 20000 + ']' * 20000):
        async with rig.http.post(f"{url}/messages", data=raw, headers=headers) as answer:
            assert answer.status == 400 and (await answer.json())["error"] == "bad_json"
    # Buttons that would answer Segue's own questions or start a destructive flow.
    for payload in ("erase_yes", "link_yes", "csat:5", "resume:abc", "forget_me"):
        status, refused = await send(rig, secret, customer, "Tap here", f"p-{payload}",
                                     buttons=[{"title": "Yes please", "payload": payload}])
        assert (status, refused["error"]) == (400, "bad_buttons"), payload
    # A slot the flow's action sets is not the business's to give.
    status, refused = await call(rig, "POST", f"/customers/{customer}/flows/order_status",
                                 secret, {"slots": {"order_found": True}})
    assert (status, refused["error"]) == (400, "bad_slots")
    # One idempotency key names one request.
    assert (await send(rig, secret, customer, "one", "idem"))[0] == 201
    status, refused = await send(rig, secret, customer, "TWO DIFFERENT", "idem")
    assert (status, refused["error"]) == (409, "idempotency_key_reused")
    body = {"slots": {"order_id": "A1001"}, "idempotency_key": "f-1"}
    assert (await call(rig, "POST", f"/customers/{customer}/flows/order_status", secret,
                       body))[0] == 201
    status, refused = await call(rig, "POST", f"/customers/{customer}/flows/delivery_slot",
                                 secret, body)
    assert (status, refused["error"]) == (409, "idempotency_key_reused")
    # Every answer under /api/v1 is JSON, wrong methods and paths included.
    for method, path, code in (("PUT", f"/customers/{customer}/messages", 405),
                               ("DELETE", f"/customers/{customer}", 405),
                               ("GET", "/", 404), ("GET", "/nothing/here", 404)):
        async with rig.http.request(method, f"{rig.app.base_url}{API}{path}",
                                    headers=headers) as answer:
            assert answer.status == code, (method, path)
            assert (await answer.json())["error"] in ("method_not_allowed", "not_found")
    assert [t for t in await history_texts(rig, customer) if t not in before][0] == "one"


async def test_a_configured_key_is_not_kept_in_the_store_so_no_revoke_is_undone(
    redis_url: str,
) -> None:
    secret = "sgk_" + "k" * 43
    async with channels_rig(redis_url, api_keys=f"env:{secret}:read") as rig:
        keys = ApiKeys(rig.segue.store.agent_store())
        assert await keys.list() == [] and not await keys.revoke("env")
        assert (await call(rig, "GET", "/customers", secret, external_id="x"))[0] == 404
        assert (await call(rig, "GET", "/customers", "sgk_" + "j" * 43, external_id="x"))[0] \
            == 401
