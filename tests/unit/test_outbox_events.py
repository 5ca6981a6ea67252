"""A notice's `event` and `channels` survive the outbox (`encode`/`decode`)
and the history, and a turn's reply keeps them on its way out."""

from __future__ import annotations

import json

from bot.core.delivery import Reply, decode, encode
from bot.core.engine import Engine, EngineOptions
from bot.core.model import Address, Button, ChannelIdentity, HistoryEntry, Inbound, Outbound
from bot.core.policy import TurnContext
from context_store import MemoryContextStore

WEB = Address("web", "s1")


def test_event_and_channels_round_trip_through_the_outbox() -> None:
    for outbound in (
        Outbound(text="Telegram chat joined", event="channel_joined",
                 channels=("telegram", "web")),
        Outbound(text="Telegram is no longer linked", event="channel_left", channels=("web",),
                 reply_to="m1"),
        Outbound(text="ann joined", sender="agent", agent_name="ann", event="agent_joined"),
        Outbound(text="You're back with our assistant.", event="agent_left",
                 buttons=(Button("Menu", "menu"),)),
    ):
        reply = Reply(WEB, outbound, "turn-1")
        assert decode(encode(reply)) == reply


def test_a_reply_that_is_no_notice_is_encoded_as_before() -> None:
    data = json.loads(encode(Reply(WEB, Outbound(text="hi"))))
    assert "event" not in data and "channels" not in data
    # What an outbox written before notices had events still reads.
    old = '{"address":{"channel":"web","target":"s1"},"text":"hi","sender":"bot"}'
    assert decode(old).outbound == Outbound(text="hi")


def test_a_history_entry_keeps_the_event_of_its_notice() -> None:
    notice = Outbound(text="bob joined", sender="agent", agent_name="bob", event="agent_joined",
                      channels=("web",))
    entry = HistoryEntry.of_outbound(notice, "web", 1700000000.0)
    assert entry.event == "agent_joined"
    assert entry.to_json()["event"] == "agent_joined"
    assert HistoryEntry.from_json(entry.to_json()) == entry
    plain = HistoryEntry.of_outbound(Outbound(text="hi"), "web", 1700000000.0)
    assert "event" not in plain.to_json() and HistoryEntry.from_json(plain.to_json()) == plain


class Unlinks:
    """Answers every message as `unlink telegram` is answered."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return [Outbound(text="Telegram is no longer linked", event="channel_left",
                         channels=("web",))]


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    async def send(self, address: Address, outbound: Outbound) -> None:
        self.sent.append(outbound)


async def test_a_turns_reply_keeps_its_event_and_channels_out_and_in_the_history() -> None:
    store, sender = MemoryContextStore(), RecordingSender()
    engine = Engine(store=store, policy=Unlinks(), senders={"web": sender},
                    options=EngineOptions(lock_wait_seconds=0.5))
    inbound = Inbound(ChannelIdentity("web", "u1"), WEB, "m7", "unlink telegram")
    turn = await engine.handle(inbound)
    [sent] = sender.sent
    assert (sent.reply_to, sent.event, sent.channels) == ("m7", "channel_left", ("web",))
    [_, entry] = await store.history(turn.customer_id, 10)
    assert entry.event == "channel_left"
