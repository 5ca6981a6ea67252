"""The customers of the soak test (`bench/soak.py`), one asyncio task each,
behaving as their platform does towards a pair of workers behind a load
balancer: each numbers its messages 1, 2, 3… and sends the next only once
the last is accepted, so "the order sent" is well defined.

- Web chat: in `bench/soak_web.py`.
- Telegram: webhook updates with the secret header, posted again with the
  same update id until answered 200.
- Slack: `message.im` event callbacks, signed, sent again with
  `X-Slack-Retry-Num` after a non-200 answer or 3 s without one. Slack's own
  pauses between attempts (1 and 5 minutes) are shortened to seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bench.soak_procs import Worker
from tests.fakes.slack_api import sign

TEAM_ID = "T061EG9R6"
BOT_USER_ID = "U0BOTUSER"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# How long each platform waits for an answer before it counts as failed.
TELEGRAM_TIMEOUT_SECONDS = 30.0
SLACK_TIMEOUT_SECONDS = 3.0
RETRY_FIRST_SECONDS = 0.25
RETRY_CAP_SECONDS = 4.0


def text_of(n: int) -> str:
    return f"soak message {n}"


@dataclass(slots=True)
class Sent:
    """One numbered message and what became of it on the customer's side."""

    n: int
    first_at: float  # time.monotonic() of the first attempt
    first_wall: float  # time.time() of the first attempt
    attempts: int = 0
    accepted_at: float | None = None
    reply_at: float | None = None  # web chat: the first reply frame
    reply_frames: int = 0  # web chat: reply frames that named this message


@dataclass(slots=True)
class Customer:
    """One soak customer on one channel."""

    channel: str  # web, telegram, slack
    name: str
    chat: str = ""  # where the bot answers: a Telegram chat id, a Slack channel
    user: str = ""  # a Telegram user id, a Slack user id
    customer_ids: list[str] = field(default_factory=list)  # web: named by `session`
    sent: list[Sent] = field(default_factory=list)

    def start(self, n: int) -> Sent:
        sent = Sent(n, time.monotonic(), time.time())
        self.sent.append(sent)
        return sent


class Balancer:
    """Spreads requests over the workers that are up, as a load balancer
    with health checks would."""

    def __init__(self, workers: list[Worker], rng: random.Random) -> None:
        self.workers = workers
        self.rng = rng
        self._changed = asyncio.Condition()

    async def pick(self) -> Worker:
        async with self._changed:
            await self._changed.wait_for(lambda: any(w.up for w in self.workers))
            return self.rng.choice([w for w in self.workers if w.up])

    async def changed(self) -> None:
        """Call after a worker came up."""
        async with self._changed:
            self._changed.notify_all()


def retry_delays() -> Iterator[float]:
    delay = RETRY_FIRST_SECONDS
    while True:
        yield delay
        delay = min(delay * 2, RETRY_CAP_SECONDS)


@dataclass(slots=True)
class Load:
    """What the customers share: the balancer, an HTTP client, the pace,
    a tally of what went wrong on the way, and the stop signal."""

    balancer: Balancer
    http: aiohttp.ClientSession
    rng: random.Random
    pause_seconds: float
    stop: asyncio.Event
    tally: Counter[str] = field(default_factory=Counter)
    last_frame_at: float = 0.0

    async def pause(self) -> None:
        """The customer's time between messages: shapes the load, and ends
        early when the run stops."""
        wait = self.pause_seconds * self.rng.uniform(0.5, 1.5)
        try:
            await asyncio.wait_for(self.stop.wait(), wait)
        except TimeoutError:
            pass


class Sender(Protocol):
    """Speaks one platform for one customer."""

    async def deliver(self, sent: Sent) -> None:
        """Return once the platform had `sent` accepted."""


async def run_customer(customer: Customer, load: Load, sender: Sender) -> None:
    """Send numbered messages until the run stops; each until accepted."""
    for n in itertools.count(1):
        if load.stop.is_set():
            return
        await sender.deliver(customer.start(n))
        await load.pause()


class TelegramSender:
    """Telegram's side of a webhook, for one customer."""

    def __init__(self, customer: Customer, load: Load, secret: str,
                 update_ids: Iterator[int]) -> None:
        self.customer = customer
        self.load = load
        self.secret = secret
        self.update_ids = update_ids

    def update(self, sent: Sent) -> dict[str, Any]:
        user = {"id": int(self.customer.user), "is_bot": False, "first_name": self.customer.name,
                "language_code": "en"}
        message = {"message_id": 1000 + sent.n, "date": int(sent.first_wall), "from": user,
                   "chat": {"id": int(self.customer.chat), "first_name": self.customer.name,
                            "type": "private"},
                   "text": text_of(sent.n)}
        return {"update_id": next(self.update_ids), "message": message}

    async def deliver(self, sent: Sent) -> None:
        raw = json.dumps(self.update(sent)).encode()
        headers = {"Content-Type": "application/json", TELEGRAM_SECRET_HEADER: self.secret}
        delays = retry_delays()
        timeout = aiohttp.ClientTimeout(total=TELEGRAM_TIMEOUT_SECONDS)
        while True:
            worker = await self.load.balancer.pick()
            sent.attempts += 1
            status = await _post(self.load, f"{worker.url}/telegram/webhook", raw, headers,
                                 timeout, "telegram")
            if status == 200:
                sent.accepted_at = time.monotonic()
                return
            await asyncio.sleep(next(delays))  # Telegram's pause before it delivers again


class SlackSender:
    """The Events API's side, for one customer writing in their DM."""

    def __init__(self, customer: Customer, load: Load, secret: str,
                 event_ids: Iterator[int]) -> None:
        self.customer = customer
        self.load = load
        self.secret = secret
        self.event_ids = event_ids

    def event(self, sent: Sent) -> dict[str, Any]:
        ts = f"{sent.first_wall:.6f}"
        event = {"type": "message", "channel": self.customer.chat, "user": self.customer.user,
                 "text": text_of(sent.n), "ts": ts, "event_ts": ts, "channel_type": "im",
                 "team": TEAM_ID, "client_msg_id": f"{self.customer.name}-{sent.n}"}
        return {
            "token": "XXYYZZ", "team_id": TEAM_ID, "api_app_id": "A0PNCHHK2",
            "type": "event_callback", "event": event,
            "event_id": f"Ev0SOAK{next(self.event_ids):08d}", "event_time": int(sent.first_wall),
            "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID,
                                "user_id": BOT_USER_ID, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
        }

    async def deliver(self, sent: Sent) -> None:
        raw = json.dumps(self.event(sent)).encode()
        delays = retry_delays()
        timeout = aiohttp.ClientTimeout(total=SLACK_TIMEOUT_SECONDS)
        while True:
            worker = await self.load.balancer.pick()
            # Slack signs every delivery afresh, retries included.
            ts = int(time.time())
            headers = {"Content-Type": "application/json",
                       "X-Slack-Request-Timestamp": str(ts),
                       "X-Slack-Signature": sign(self.secret, raw, ts)}
            if sent.attempts:
                headers["X-Slack-Retry-Num"] = str(sent.attempts)
                headers["X-Slack-Retry-Reason"] = "http_timeout"
            sent.attempts += 1
            status = await _post(self.load, f"{worker.url}/slack/events", raw, headers,
                                 timeout, "slack")
            if status == 200:
                sent.accepted_at = time.monotonic()
                return
            await asyncio.sleep(next(delays))


async def _post(load: Load, url: str, raw: bytes, headers: dict[str, str],
                timeout: aiohttp.ClientTimeout, channel: str) -> int | None:
    """The HTTP status, or None when no answer came (tallied either way)."""
    try:
        async with load.http.post(url, data=raw, headers=headers, timeout=timeout) as resp:
            await resp.read()
            if resp.status != 200:
                load.tally[f"{channel}: answered HTTP {resp.status}"] += 1
            return resp.status
    except TimeoutError:
        load.tally[f"{channel}: no answer in {timeout.total:.0f} s"] += 1
    except aiohttp.ClientError:
        load.tally[f"{channel}: connection failed or cut"] += 1
    return None
