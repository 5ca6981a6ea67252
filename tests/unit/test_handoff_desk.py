"""The handoff desk at its public API on both real stores: the events the
consoles get, the answers of each action, the queue and claim listings, the
conversation view, and where an agent's message goes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

from bot.core.bus import LocalBus
from bot.core.conversation import ConversationState, HandoffState
from bot.core.engine import EngineOptions
from bot.core.errors import ConnectorError, LockTimeout
from bot.core.model import Address, Button, ChannelIdentity, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from bot.core.ports import ContextStore
from bot.handoff.desk import DeskError, DeskOptions
from bot.handoff.ports import AgentAccount
from bot.handoff.state import as_json, claimed_by, new_handoff
from context_store.agents_memory import MemoryAgentStore
from tests.support.engines import handoff_engine

ANN = AgentAccount(username="ann", display_name="Ann", password_hash="x", role="agent")
BOB = AgentAccount(username="bob", display_name="Bob", password_hash="x", role="agent")
ROOT = AgentAccount(username="root", display_name="Root", password_hash="x", role="admin")


class Silent:
    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return []


class Sender:
    """A connector that records what it sends, or fails every send."""

    def __init__(self, *, failing: bool = False) -> None:
        self.sent: list[tuple[Address, Outbound]] = []
        self.failing = failing
        # For the web chat: whether a socket of the session is open anywhere.
        self.open = True

    async def reachable(self, address: Address) -> bool:
        return self.open

    async def send(self, address: Address, outbound: Outbound) -> None:
        if self.failing:
            raise ConnectorError("the channel is down")
        self.sent.append((address, outbound))


class Rig:
    def __init__(self, store: Any, *, channels: tuple[str, ...] = ("web", "telegram", "slack"),
                 web_open: bool = False, failing: tuple[str, ...] = (),
                 options: DeskOptions | None = None, lock_wait: float = 10.0) -> None:
        self.store = store
        self.senders = {ch: Sender(failing=ch in failing) for ch in channels}
        if "web" in self.senders:
            self.senders["web"].open = web_open
        self.agents = MemoryAgentStore()
        self.bus = LocalBus()
        self.events: list[dict[str, Any]] = []

        async def record(event: dict[str, Any]) -> None:
            self.events.append(event)

        self.bus.subscribe("agents", record)
        _, self.desk = handoff_engine(
            store, Silent(), self.senders, agents=self.agents, bus=self.bus,
            desk_options=options, engine_options=EngineOptions(lock_wait_seconds=lock_wait))

    async def put_accounts(self) -> None:
        for account in (ANN, BOB, ROOT):
            await self.agents.put_agent(account)

    async def write(self, customer: str, state: ConversationState,
                    entries: list[HistoryEntry] | None = None,
                    address: Address | None = None) -> None:
        """Save `state` (and entries, and the address a message came from) as a turn would."""
        loaded = await self.store.lock_and_load(customer, token="seed", ttl_seconds=5,
                                                message_key=None)
        assert loaded.locked
        identity = ChannelIdentity(address.channel, address.target) if address else None
        assert await self.store.save_and_unlock(
            customer, token="seed", state=state.to_json(), entries=entries or [],
            message_key=None, identity=identity, address=address)

    async def waiting(self, customer: str, reason: str = "customer sent /agent",
                      channel: str = "web", handoff: HandoffState | None = None) -> HandoffState:
        address = Address(channel, f"{channel}-{customer}")
        handoff = handoff or new_handoff(reason)
        await self.write(customer, ConversationState(last_address=address, handoff=handoff),
                         address=address)
        return handoff

    async def state(self, customer: str) -> ConversationState:
        return ConversationState.from_json(await self.store.load_state(customer))

    async def handoff(self, customer: str) -> dict[str, Any] | None:
        """The customer's handoff, as the agent API shows it."""
        return as_json((await self.state(customer)).handoff)


def entry(sender: str, channel: str, text: str, ts: float,
          buttons: tuple[Button, ...] = ()) -> HistoryEntry:
    return HistoryEntry(sender=sender, channel=channel, text=text, ts=ts,  # type: ignore[arg-type]
                        buttons=buttons)


def without_ts(event: dict[str, Any]) -> dict[str, Any]:
    event = dict(event)
    if "entry" in event:
        event["entry"] = {k: v for k, v in event["entry"].items() if k != "ts"}
    return event


async def test_replying_to_a_waiting_conversation_takes_it_and_tells_the_consoles(
    store: ContextStore,
) -> None:
    rig = Rig(store, web_open=True)
    since = (await rig.waiting("c1", reason="customer sent /agent")).since
    answer = await rig.desk.reply(ANN, "c1", "Hello, Ann here")
    sent = {"sender": "agent", "channel": "web", "text": "Hello, Ann here", "agent_name": "Ann"}
    assert {k: v for k, v in answer.items() if k != "entry"} == {"delivered": True,
                                                                "channel": "web"}
    assert without_ts({"entry": answer["entry"]}) == {"entry": sent}
    took = {"sender": "internal", "channel": "console", "text": "Ann took the conversation",
            "agent_name": "Ann", "event": "claimed"}
    assert [without_ts(e) for e in rig.events] == [
        {"type": "claimed", "customer": "c1", "agent": "ann"},
        {"type": "message", "customer": "c1", "agent": "ann", "entry": took},
        {"type": "message", "customer": "c1", "agent": "ann", "entry": sent},
    ]
    handoff = await rig.handoff("c1")
    assert handoff is not None
    assert (handoff["status"], handoff["agent"], handoff["agent_name"]) == ("claimed", "ann", "Ann")
    # Why and since when it waited stay as they were.
    assert (handoff["reason"], handoff["since"]) == ("customer sent /agent", since)
    assert await rig.agents.claimed() == {"c1": "ann"}
    # A second reply: the holder's message, no second claim.
    rig.events.clear()
    await rig.desk.reply(ANN, "c1", "Still here")
    assert [e["type"] for e in rig.events] == ["message"]
    assert rig.events[0]["agent"] == "ann"


async def test_claim_answers_and_tells_the_consoles(store: ContextStore) -> None:
    rig = Rig(store, web_open=True)
    await rig.waiting("c2")
    answer = await rig.desk.claim(ANN, "c2")
    assert answer["customer"] == "c2" and answer["handoff"]["agent"] == "ann"
    took = {"sender": "internal", "channel": "console", "text": "Ann took the conversation",
            "agent_name": "Ann", "event": "claimed"}
    assert [without_ts(e) for e in rig.events] == [
        {"type": "claimed", "customer": "c2", "agent": "ann"},
        {"type": "message", "customer": "c2", "agent": "ann", "entry": took}]


async def test_a_customer_message_in_a_held_conversation_names_the_holder(
    store: ContextStore,
) -> None:
    rig = Rig(store)
    state = ConversationState(turns=5, handoff=replace(claimed_by(new_handoff("r"), BOB),
                                                       started_turn=2))
    said = entry("customer", "web", "are you there?", time.time())
    await rig.desk.announce("c3", state, [said])
    assert rig.events == [{"type": "message", "customer": "c3", "agent": "bob",
                           "entry": said.to_json()}]


async def test_an_admin_takes_over_a_conversation_nobody_asked_for(store: ContextStore) -> None:
    rig = Rig(store, web_open=True)
    await rig.put_accounts()
    address = Address("web", "s1")
    for customer in ("by-reply", "by-claim", "by-transfer"):
        await rig.write(customer, ConversationState(last_address=address), address=address)
    await rig.desk.reply(ROOT, "by-reply", "Hi, an admin here")
    await rig.desk.claim(ROOT, "by-claim")
    await rig.desk.transfer(ROOT, "by-transfer", "bob")
    for customer, holder in (("by-reply", "root"), ("by-claim", "root"), ("by-transfer", "bob")):
        handoff = await rig.handoff(customer)
        assert handoff is not None and handoff["status"] == "claimed", customer
        assert handoff["agent"] == holder
        assert "admin" in handoff["reason"]
    actions = [e["type"] for e in rig.events if e.get("entry", {}).get("sender") != "internal"]
    assert actions == ["claimed", "message", "claimed", "transferred"]
    assert [(e["customer"], e["entry"]["event"]) for e in rig.events
            if e.get("entry", {}).get("sender") == "internal"] == [
        ("by-reply", "claimed"), ("by-claim", "claimed"), ("by-transfer", "transferred")]


async def test_queueing_later_keeps_a_held_conversation_and_lists_a_new_one(
    store: ContextStore,
) -> None:
    rig = Rig(store)
    await rig.waiting("held", handoff=claimed_by(new_handoff("first"), ANN))
    await rig.agents.index_claimed("held", "ann")
    await rig.desk.queue_later("held", "asked again")
    handoff = await rig.handoff("held")
    assert handoff is not None and (handoff["status"], handoff["agent"]) == ("claimed", "ann")
    assert await rig.agents.claimed() == {"held": "ann"}
    address = Address("telegram", "t1")
    await rig.write("fresh", ConversationState(last_address=address), address=address)
    await rig.desk.queue_later("fresh", "action_escalate asked for a person")
    [waiting] = await rig.desk.queue()
    assert waiting["customer"] == "fresh"
    assert waiting["reason"] == "action_escalate asked for a person"
    assert rig.events == [
        {"type": "queued", "customer": "held", "reason": "asked again"},
        {"type": "queued", "customer": "fresh", "reason": "action_escalate asked for a person"},
    ]


async def test_a_merge_keeps_the_targets_own_holder(store: ContextStore) -> None:
    rig = Rig(store)
    await rig.waiting("target", handoff=claimed_by(new_handoff("target's"), BOB))
    await rig.agents.index_queued("source", 1.0)
    await rig.desk.follow_merge("source", "target", new_handoff("source's"))
    handoff = await rig.handoff("target")
    assert handoff is not None
    assert (handoff["status"], handoff["agent"], handoff["reason"]) == (
        "claimed", "bob", "target's")
    assert await rig.agents.claimed() == {"target": "bob"}
    assert await rig.agents.queued() == []
    assert rig.events == [{"type": "moved", "customer": "source", "to": "target"}]


async def test_forgetting_a_customer_tells_the_consoles_who(store: ContextStore) -> None:
    rig = Rig(store)
    await rig.agents.index_queued("gone", 1.0)
    await rig.desk.forget("gone")
    assert await rig.agents.queued() == []
    assert rig.events == [{"type": "erased", "customer": "gone"}]


async def test_the_queue_skips_gone_and_answered_entries_and_keeps_its_limit(
    store: ContextStore,
) -> None:
    rig = Rig(store)
    await rig.agents.index_queued("a-gone", 1.0)  # no state any more
    address = Address("web", "s")
    await rig.write("b-answered", ConversationState(last_address=address), address=address)
    await rig.agents.index_queued("b-answered", 2.0)  # handed back, still indexed
    await rig.waiting("c-waiting", reason="customer sent /agent", channel="slack")
    await rig.agents.index_queued("c-waiting", 3.0)
    await rig.waiting("d-waiting")
    await rig.agents.index_queued("d-waiting", 4.0)
    rig.desk.clock = lambda: 303.5
    assert await rig.desk.queue(limit=500) == [
        {"customer": "c-waiting", "since": 3.0, "reason": "customer sent /agent",
         "channel": "slack", "waited_seconds": 300.5, "waiting_too_long": True},
        {"customer": "d-waiting", "since": 4.0, "reason": "customer sent /agent",
         "channel": "web", "waited_seconds": 299.5, "waiting_too_long": False},
    ]
    assert [w["customer"] for w in await rig.desk.queue(limit=1)] == []  # b is skipped
    assert [w["customer"] for w in await rig.desk.queue(limit=2)] == ["c-waiting"]


async def test_claimed_lists_ones_own_and_everyones_for_an_admin(store: ContextStore) -> None:
    rig = Rig(store)
    await rig.agents.index_claimed("a-gone", "ann")  # no state any more
    for customer, holder in (("b-bobs", BOB), ("c-anns", ANN)):
        await rig.waiting(customer, handoff=claimed_by(new_handoff("r"), holder))
        await rig.agents.index_claimed(customer, holder.username)
    assert await rig.desk.claimed(ANN) == [{"customer": "c-anns", "agent": "ann"}]
    assert await rig.desk.claimed(ROOT) == [{"customer": "b-bobs", "agent": "bob"},
                                            {"customer": "c-anns", "agent": "ann"}]
    assert await rig.agents.claimed() == {"b-bobs": "bob", "c-anns": "ann"}


async def test_the_view_holds_every_field(store: ContextStore) -> None:
    rig = Rig(store)
    web, telegram = Address("web", "s1"), Address("telegram", "42")
    await rig.write("c1", ConversationState(), address=web)
    await rig.write("c1", ConversationState(
        last_address=telegram, dialog={"flow": "order", "slots": {"size": "L"}},
        handoff=new_handoff("why")), [entry("customer", "telegram", "hi", 10.0)], telegram)
    view = await rig.desk.view(ANN, "c1")
    assert view["customer"] == "c1"
    assert view["handoff"]["reason"] == "why"
    assert view["last_channel"] == "telegram"
    assert sorted(view["channels"], key=lambda c: c["channel"]) == [
        {"channel": "telegram", "user_id": "42"}, {"channel": "web", "user_id": "s1"}]
    assert view["addresses"] == {"telegram": telegram.to_json(), "web": web.to_json()}
    assert (view["flow"], view["slots"]) == ("order", {"size": "L"})
    assert [e["text"] for e in view["history"]] == ["hi"]


async def test_a_conversation_with_no_address_yet_is_viewed_and_answered(
    store: ContextStore,
) -> None:
    rig = Rig(store)
    # A signed-in visitor's account that never wrote, joined by a waiting conversation.
    await rig.desk.follow_merge("source", "account", new_handoff("customer sent /agent"))
    view = await rig.desk.view(ANN, "account")
    assert (view["last_channel"], view["flow"], view["slots"]) == (None, None, {})
    answer = await rig.desk.reply(ANN, "account", "Hello")
    assert (answer["delivered"], answer["channel"]) == (False, None)
    assert answer["entry"]["channel"] == "web"


async def test_a_reply_of_exactly_the_longest_length_is_taken(store: ContextStore) -> None:
    rig = Rig(store, web_open=True, options=DeskOptions(max_text_length=10))
    await rig.waiting("c1")
    assert (await rig.desk.reply(ANN, "c1", "x" * 10))["delivered"] is True
    with pytest.raises(DeskError) as refused:
        await rig.desk.reply(ANN, "c1", "x" * 11)
    assert refused.value.code == "bad_text" and "10" in refused.value.message


async def test_a_closed_web_chat_sends_to_the_channel_the_customer_last_wrote_on(
    store: ContextStore,
) -> None:
    rig = Rig(store)
    slack, telegram, web = Address("slack", "U1"), Address("telegram", "42"), Address("web", "s")
    handoff = claimed_by(new_handoff("customer sent /agent"), ANN)
    await rig.write("c1", ConversationState(last_address=slack), [
        entry("customer", "slack", "hi", 1.0), entry("bot", "slack", "Hello!", 1.1)], slack)
    await rig.write("c1", ConversationState(last_address=slack, handoff=handoff), [
        entry("customer", "slack", "a person please", 2.0),
        entry("bot", "slack", "Someone will be with you", 2.1)], slack)
    await rig.write("c1", ConversationState(last_address=telegram, handoff=handoff), [
        entry("customer", "telegram", "still there?", 3.0)], telegram)
    await rig.write("c1", ConversationState(last_address=web, handoff=handoff), [
        entry("customer", "web", "hello?", 4.0)], web)
    answer = await rig.desk.reply(ANN, "c1", "Yes, here")
    assert (answer["delivered"], answer["channel"]) == (True, "telegram")
    assert [o.text for _, o in rig.senders["telegram"].sent] == ["Yes, here"]
    assert rig.senders["slack"].sent == [] and rig.senders["web"].sent == []


async def test_with_no_customer_message_on_another_channel_its_only_address_is_used(
    store: ContextStore,
) -> None:
    rig = Rig(store)
    await rig.put_accounts()
    telegram, web = Address("telegram", "42"), Address("web", "s")
    await rig.write("c1", ConversationState(last_address=telegram), address=telegram)
    state = ConversationState(last_address=web, handoff=claimed_by(new_handoff("r"), ANN))
    await rig.write("c1", state, [entry("customer", "web", "hi", 1.0)], web)
    await rig.desk.transfer(ANN, "c1", "bob")
    await rig.desk.release(BOB, "c1")
    await rig.desk.reply(ROOT, "c1", "An admin here")
    await rig.desk.close(ROOT, "c1")
    sent = [o for _, o in rig.senders["telegram"].sent]
    assert [(o.text, o.agent_name) for o in sent] == [
        ("Bob from our team is taking over this conversation.", "Bob"),
        ("You're back with our assistant. Ask for a person again at any time.", None),
        ("An admin here", "Root"),
        ("Root closed this conversation. Write here any time if you need anything else.",
         None),
        ("How did we do? Please rate this conversation from 1 (poor) to 5 (great).", None),
    ]


async def test_channels_without_a_connector_are_not_used(store: ContextStore) -> None:
    rig = Rig(store, channels=("web", "telegram"))
    # Last on web (closed), also on Slack, which this deployment does not run.
    slack, web = Address("slack", "U1"), Address("web", "s")
    handoff = claimed_by(new_handoff("r"), ANN)
    await rig.write("c1", ConversationState(last_address=slack), address=slack)
    await rig.write("c1", ConversationState(last_address=web, handoff=handoff), address=web)
    answer = await rig.desk.reply(ANN, "c1", "Hello")
    assert (answer["delivered"], answer["channel"], answer["entry"]["channel"]) == (
        False, None, "web")
    # Last on Slack: the web chat's address is no fallback.
    await rig.write("c2", ConversationState(last_address=web), address=web)
    await rig.write("c2", ConversationState(last_address=slack, handoff=handoff), address=slack)
    answer = await rig.desk.reply(ANN, "c2", "Hello")
    assert (answer["delivered"], answer["channel"], answer["entry"]["channel"]) == (
        False, None, "slack")
    assert rig.senders["web"].sent == [] and rig.senders["telegram"].sent == []


async def test_a_failed_delivery_is_reported_as_not_delivered(store: ContextStore) -> None:
    rig = Rig(store, failing=("telegram",))
    await rig.waiting("c1", channel="telegram")
    answer = await rig.desk.reply(ANN, "c1", "Hello")
    assert (answer["delivered"], answer["channel"], answer["entry"]["channel"]) == (
        False, None, "telegram")


async def test_release_and_close_tell_the_consoles_which_and_by_whom(store: ContextStore) -> None:
    rig = Rig(store, web_open=True)
    for customer in ("c1", "c2"):
        await rig.waiting(customer, handoff=claimed_by(new_handoff("r"), ANN))
    released = await rig.desk.release(ANN, "c1")
    closed = await rig.desk.close(ANN, "c2")
    assert released == {"customer": "c1", "handoff": None}
    assert closed == {"customer": "c2", "handoff": None}
    assert [without_ts(e) for e in rig.events] == [
        {"type": "released", "customer": "c1", "by": "ann"},
        {"type": "message", "customer": "c1", "agent": None, "entry": {
            "sender": "internal", "channel": "console", "event": "released",
            "text": "Ann gave the conversation back to the bot", "agent_name": "Ann"}},
        {"type": "closed", "customer": "c2", "by": "ann"},
        {"type": "message", "customer": "c2", "agent": None, "entry": {
            "sender": "internal", "channel": "console", "event": "closed",
            "text": "Ann closed the conversation", "agent_name": "Ann"}}]


async def test_transfer_answers_and_tells_the_consoles(store: ContextStore) -> None:
    rig = Rig(store, web_open=True)
    await rig.put_accounts()
    await rig.waiting("c1", handoff=claimed_by(new_handoff("r"), ANN))
    answer = await rig.desk.transfer(ANN, "c1", "bob")
    assert answer["customer"] == "c1" and answer["handoff"]["agent"] == "bob"
    assert [without_ts(e) for e in rig.events] == [
        {"type": "transferred", "customer": "c1", "agent": "bob", "from": "ann", "by": "ann"},
        {"type": "message", "customer": "c1", "agent": "bob", "entry": {
            "sender": "internal", "channel": "console", "event": "transferred",
            "text": "Ann handed the conversation to Bob", "agent_name": "Bob"}}]
    for odd in (["bob"], {"name": "bob"}, 7, None):
        with pytest.raises(DeskError) as refused:
            await rig.desk.transfer(BOB, "c1", odd)
        assert refused.value.code == "unknown_agent" and refused.value.message


async def test_release_asks_again_the_question_from_before_the_handoff(
    store: ContextStore,
) -> None:
    rig = Rig(store, web_open=True)
    handoff = claimed_by(new_handoff("r"), ANN)
    since = handoff.since
    sizes = (Button("Small", "/size_s"), Button("Large", "/size_l"))
    web = Address("web", "s")
    await rig.write("c1", ConversationState(last_address=web, dialog={"waiting": True},
                                            handoff=handoff), [
        entry("bot", "web", "Which size?", since - 10, sizes),
        entry("customer", "web", "a person please", since - 5),
        # Written in the same instant the handoff began: not the flow's question.
        entry("bot", "web", "Someone will be with you", since),
    ], web)
    await rig.desk.release(ANN, "c1")
    [_, (_, again)] = rig.senders["web"].sent
    assert again.text == "Where we left off: Which size?"
    assert again.buttons == sizes


class Racing:
    """A real store; `hold` makes every lock attempt find the customer locked
    (counting them) until `let_go`; `erase_first` erases the customer just
    before the desk's first lock attempt, as another worker could."""

    def __init__(self, store: ContextStore) -> None:
        self._store = store
        self.attempts = 0
        self.enough = asyncio.Event()
        self.wanted = 0
        self.held = False
        self.erase_first = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def lock_and_load(self, customer_id: str, **kwargs: Any) -> Any:
        if self.erase_first:
            self.erase_first = False
            await self._store.erase(customer_id)
        if self.held:
            self.attempts += 1
            if self.attempts >= self.wanted:
                self.enough.set()
            return await self._store.lock_and_load(customer_id, **{**kwargs, "token": "turn"})
        return await self._store.lock_and_load(customer_id, **kwargs)


async def test_an_action_retries_promptly_while_a_turn_holds_the_customer(
    store: ContextStore,
) -> None:
    racing = Racing(store)
    rig = Rig(racing, web_open=True, lock_wait=3.0)
    await rig.waiting("c1")
    assert (await store.lock_and_load("c1", token="turn", ttl_seconds=30,
                                      message_key=None)).locked
    racing.held, racing.wanted = True, 11
    action = asyncio.create_task(rig.desk.claim(ANN, "c1"))
    # Eleven attempts well within the seconds the desk waits (a few
    # milliseconds apart at first, a tenth of a second at most later) ...
    enough = asyncio.create_task(racing.enough.wait())
    await asyncio.wait({action, enough}, return_when=asyncio.FIRST_COMPLETED)
    if not enough.done():
        enough.cancel()
        raise AssertionError(f"gave up after {racing.attempts} attempts: {action.exception()!r}")
    racing.held = False
    await store.unlock("c1", token="turn")
    # ... and the one after the turn ends takes the lock.
    assert (await action)["handoff"]["agent"] == "ann"


async def test_an_action_gives_up_when_the_turn_never_ends(store: ContextStore) -> None:
    rig = Rig(store, lock_wait=0.05)
    await rig.waiting("c1")
    assert (await store.lock_and_load("c1", token="turn", ttl_seconds=30,
                                      message_key=None)).locked
    with pytest.raises(LockTimeout):
        await rig.desk.claim(ANN, "c1")


async def test_a_customer_erased_during_an_action_is_unknown(store: ContextStore) -> None:
    racing = Racing(store)
    rig = Rig(racing)
    await rig.waiting("c1")
    racing.erase_first = True
    with pytest.raises(DeskError) as refused:
        await rig.desk.claim(ANN, "c1")
    assert refused.value.code == "unknown_customer"
    assert "joined into another" in refused.value.message


async def test_every_refusal_has_a_code_and_a_message(store: ContextStore) -> None:
    rig = Rig(store)
    await rig.put_accounts()
    address = Address("web", "s")
    await rig.write("idle", ConversationState(last_address=address), address=address)
    await rig.waiting("anns", handoff=claimed_by(new_handoff("r"), ANN))
    refusals = [
        ("not_in_queue", rig.desk.reply(BOB, "idle", "hi")),
        ("not_in_queue", rig.desk.claim(BOB, "idle")),
        ("not_yours", rig.desk.reply(BOB, "anns", "hi")),
        ("already_claimed", rig.desk.claim(BOB, "anns")),
        ("bad_text", rig.desk.reply(ANN, "anns", " ")),
        ("bad_text", rig.desk.reply(ANN, "anns", "x" * 5000)),
        ("unknown_agent", rig.desk.transfer(ANN, "anns", "zoe")),
        ("not_handed_off", rig.desk.release(ROOT, "idle")),
        ("unknown_customer", rig.desk.view(ANN, "no/such")),
        ("unknown_customer", rig.desk.view(ANN, "nosuch")),
    ]
    for code, call in refusals:
        with pytest.raises(DeskError) as refused:
            await call
        assert refused.value.code == code
        assert isinstance(refused.value.message, str) and refused.value.message, code
    with pytest.raises(DeskError) as refused:
        await rig.desk.release(BOB, "anns")
    # Whoever asks is told who holds it.
    assert refused.value.code == "not_yours" and "Ann" in refused.value.message
