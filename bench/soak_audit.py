"""The soak test's audit (`bench/soak.py`): per customer, every message sent
has exactly one history entry and exactly one reply, both in the order sent.

History is read from Redis through Segue's own `RedisContextStore`. Replies
are what the platforms received: the fake Bot API's `sendMessage` calls and
the fake Web API's `chat.postMessage` calls; for the web chat, the bot's
entries in the history (a reply to a socket that was gone by then is only
there, and the widget shows it from there on its next hello).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from bench.soak_load import TEAM_ID, Customer, Sent
from bot.core.identities import new_customer_id
from bot.core.model import ChannelIdentity, HistoryEntry
from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import FakeTelegram

CUSTOMER_TEXT = re.compile(r"soak message (\d+)")
REPLY_TEXT = re.compile(r"got (\d+)")
EXAMPLES = 6


@dataclass(slots=True)
class Sequence:
    """How a list of message numbers compares with the messages sent."""

    duplicates: int = 0  # entries beyond the first for a number
    lost: int = 0  # accepted messages with no entry
    out_of_order: int = 0  # first entries that come after a higher number's
    unexpected: int = 0  # entries naming no message sent, or not numbered at all


@dataclass(slots=True)
class ChannelAudit:
    """The figures of one channel, summed over its customers."""

    channel: str
    customers: int = 0
    sent: int = 0
    accepted: int = 0
    attempts: int = 0
    entries: int = 0  # history entries read
    history: Sequence = field(default_factory=Sequence)
    history_replies: Sequence = field(default_factory=Sequence)
    replies: Sequence = field(default_factory=Sequence)
    latencies: list[float] = field(default_factory=list)  # seconds, send to reply
    examples: list[str] = field(default_factory=list)

    @property
    def unaccepted(self) -> int:
        return self.sent - self.accepted

    def failures(self) -> int:
        seqs = [self.history, self.replies]
        if self.channel != "web":
            # The web chat's replies are read from its history: counted once.
            seqs.append(self.history_replies)
        return self.unaccepted + sum(
            s.duplicates + s.lost + s.out_of_order + s.unexpected for s in seqs)

    def note(self, example: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


class Ignored:
    """Takes examples and drops them: they were noted once already."""

    def note(self, example: str) -> None:
        pass


class Notes(Protocol):
    def note(self, example: str) -> None: ...


def compare(numbers: Iterable[int | None], sent: list[Sent], into: Sequence,
            audit: Notes, who: str, what: str) -> None:
    """Add how `numbers` (None: an entry that names no number) match `sent`
    to `into`, with examples."""
    seen: Counter[int] = Counter()
    highest = 0
    for number in numbers:
        if number is None or not 1 <= number <= len(sent):
            into.unexpected += 1
            audit.note(f"{who}: a {what} naming no message sent ({number})")
            continue
        seen[number] += 1
        if seen[number] > 1:
            into.duplicates += 1
            audit.note(f"{who}: message {number} has a {what} again ({seen[number]} in all)")
            continue
        if number < highest:
            into.out_of_order += 1
            audit.note(f"{who}: the {what} of message {number} came after that of {highest}")
        highest = max(highest, number)
    for message in sent:
        if message.accepted_at is not None and message.n not in seen:
            into.lost += 1
            audit.note(f"{who}: message {message.n} was accepted but has no {what}")


def _number(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.fullmatch(text.strip())
    return int(match.group(1)) if match else None


async def history_of(store: RedisContextStore, customer: Customer) -> list[HistoryEntry]:
    if customer.channel == "web":
        if not customer.customer_ids:
            return []
        customer_id = customer.customer_ids[-1]
    else:
        user = customer.user if customer.channel == "telegram" else f"{TEAM_ID}:{customer.user}"
        # Creates the mapping of a customer never stored; the audit comes last.
        customer_id = await store.resolve_customer(
            ChannelIdentity(customer.channel, user), new_customer_id())
    return await store.history(customer_id, 2 * len(customer.sent) + 1000)


def delivered(telegram: FakeTelegram, slack: FakeSlackApi) -> dict[tuple[str, str],
                                                                    list[tuple[str, float]]]:
    """Every reply the platforms accepted, by (channel, chat): text and when."""
    replies: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for call in telegram.calls:
        if call.method == "sendMessage" and call.result is not None:
            replies[("telegram", call.params["chat_id"])].append((call.params["text"], call.at))
    for slack_call in slack.calls_to("chat.postMessage"):
        if slack_call.status == 200 and slack_call.response.get("ok"):
            key = ("slack", str(slack_call.args.get("channel")))
            replies[key].append((str(slack_call.args.get("text", "")), slack_call.at))
    return replies


async def audit(customers: list[Customer], store: RedisContextStore, telegram: FakeTelegram,
                slack: FakeSlackApi) -> dict[str, ChannelAudit]:
    results = {name: ChannelAudit(name) for name in ("web", "telegram", "slack")}
    replies = delivered(telegram, slack)
    for customer in customers:
        result = results[customer.channel]
        sent = customer.sent
        who = f"{customer.channel} {customer.name}"
        result.customers += 1
        result.sent += len(sent)
        result.accepted += sum(1 for s in sent if s.accepted_at is not None)
        result.attempts += sum(s.attempts for s in sent)
        if len(customer.customer_ids) > 1:
            result.history.unexpected += 1
            result.note(f"{who}: the session's customer changed: {customer.customer_ids}")
        entries = await history_of(store, customer)
        result.entries += len(entries)
        mine = [e for e in entries if e.sender == "customer"]
        bot = [e for e in entries if e.sender != "customer"]
        compare((_number(CUSTOMER_TEXT, e.text) for e in mine), sent, result.history,
                result, who, "history entry")
        compare((_number(REPLY_TEXT, e.text) for e in bot), sent, result.history_replies,
                result, who, "reply in history")
        if customer.channel == "web":
            _web_replies(customer, bot, result, who)
        else:
            _platform_replies(customer, replies[(customer.channel, customer.chat)], result, who)
    return results


def _web_replies(customer: Customer, bot: list[HistoryEntry], result: ChannelAudit,
                 who: str) -> None:
    """Web chat: the history's replies are the replies; reply frames seen
    twice on live sockets count as duplicates too."""
    compare((_number(REPLY_TEXT, e.text) for e in bot), customer.sent, result.replies,
            Ignored(), who, "reply")
    at: dict[int, float] = {}
    for entry in bot:
        number = _number(REPLY_TEXT, entry.text)
        if number is not None:
            at.setdefault(number, entry.ts)
    for message in customer.sent:
        if message.reply_frames > 1:
            result.replies.duplicates += message.reply_frames - 1
            result.note(f"{who}: the reply to {message.n} came {message.reply_frames} times "
                        "on live sockets")
        if message.reply_at is not None:
            result.latencies.append(message.reply_at - message.first_at)
        elif message.n in at:
            # Its socket was gone: when the reply was saved, by the worker's clock.
            result.latencies.append(max(0.0, at[message.n] - message.first_wall))


def _platform_replies(customer: Customer, replies: list[tuple[str, float]],
                      result: ChannelAudit, who: str) -> None:
    numbers = [_number(REPLY_TEXT, text) for text, _ in replies]
    compare(numbers, customer.sent, result.replies, result, who, "delivered reply")
    first: dict[int, float] = {}
    for number, (_, at) in zip(numbers, replies, strict=True):
        if number is not None:
            first.setdefault(number, at)
    for message in customer.sent:
        if message.n in first:
            result.latencies.append(first[message.n] - message.first_at)


def activity(results: dict[str, ChannelAudit], telegram: FakeTelegram,
             slack: FakeSlackApi) -> tuple[int, ...]:
    """A fingerprint that changes whenever anything is still arriving."""
    return (len(telegram.calls), len(slack.calls),
            *(r.entries for r in results.values()), *(r.accepted for r in results.values()))
