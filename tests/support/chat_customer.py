"""One customer of a bot behind one interface, whether they write on the web
chat or on Telegram, so a dialog test is written once and run on both
channels (no tests here). Segue's real app on loopback with both channels,
Telegram in webhook mode against the local Bot API fake, a real Redis and
the console accounts of `handoff_rig`.

`say` returns every message the bot sent for that one message, however many:
after the message a probe (`channels`) is sent, which is always answered,
even while a person holds the conversation, and never reaches the dialog
policy; one customer's messages are handled in order, so everything sent
before the probe's answer answers the message. The probe's answer is a bot
message in the history like any other, so before a step that says again the
bot's last message (a handoff, which a release takes up; a link, which the
joined chat takes up) use `say_expecting`, which sends no probe."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from bot.core.model import ChannelIdentity
from context_store import RedisContextStore
from tests.fakes.telegram_api import (
    CUSTOMER,
    TOKEN,
    ApiCall,
    FakeTelegram,
    callback_update,
    keyboard_of,
    message_update,
)
from tests.support.app_server import RunningApp, serve_segue
from tests.support.handoff_rig import AgentClient, add_accounts, agent, handoff_settings
from tests.support.redis_server import free_port
from tests.support.webchat_client import PROBE, WebChatClient

CHANNELS = ["web", "telegram"]
# Telegram user ids of the customers a test makes, one after another.
TELEGRAM_USERS_FROM = 5551234
TIMEOUT = 15.0
# The probe's answer, in each language the product speaks: on Telegram, where
# no reply names the message it answers, what tells it apart. Anchored, as a
# "where we left off" may quote it.
PROBE_ANSWER = re.compile(r"^(This conversation is linked with|Dieses Gespräch ist verknüpft mit"
                          r"|Esta conversación está vinculada con): ")


@dataclass(frozen=True, slots=True)
class Reply:
    """One message the customer got: its text and its buttons (title, payload)."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()

    @property
    def payloads(self) -> list[str]:
        return [payload for _, payload in self.buttons]


def texts(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies]


class Customer(Protocol):
    channel: str

    async def say(self, text: str) -> list[Reply]:
        """Everything the bot sent in answer to `text`."""
        ...

    async def press(self, payload: str) -> list[Reply]:
        """The button with `payload` on the latest message that has it pressed;
        everything the bot sent in answer."""
        ...

    async def say_expecting(self, text: str, count: int) -> list[Reply]:
        """`text` sent with no probe after it (a probe would replace a
        pending link question); the next `count` messages."""
        ...

    async def notices(self, count: int) -> list[Reply]:
        """The next `count` messages that answer nothing the customer sent
        (an agent's, the desk's)."""
        ...

    async def customer_id(self) -> str:
        ...


class WebCustomer:
    """A customer on the web chat, over one socket."""

    channel = "web"

    def __init__(self, client: WebChatClient) -> None:
        self.client = client
        self.seen: list[Reply] = []

    async def say(self, text: str) -> list[Reply]:
        return await self._send(text, None)

    async def press(self, payload: str) -> list[Reply]:
        return await self._send(_title_of(self.seen, payload), payload)

    async def say_expecting(self, text: str, count: int) -> list[Reply]:
        await self.client.say(text)
        return await self.notices(count)

    async def notices(self, count: int) -> list[Reply]:
        got: list[Reply] = []
        try:
            async with asyncio.timeout(TIMEOUT):
                while len(got) < count:
                    frame = await self._frame()
                    if frame["type"] == "message":
                        got.append(self._keep(frame))
        except TimeoutError:
            raise AssertionError(f"expected {count} messages, got only {got}") from None
        return got

    async def customer_id(self) -> str:
        assert self.client.customer is not None
        return self.client.customer

    async def _send(self, text: str, payload: str | None) -> list[Reply]:
        await self.client.say(text, payload=payload)
        probe = await self.client.say(PROBE)
        replies: list[Reply] = []
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    frame = await self._frame()
                    if frame["type"] != "message":
                        continue
                    if frame.get("reply_to") == probe:
                        assert PROBE_ANSWER.match(frame["text"]), frame
                        return replies
                    replies.append(self._keep(frame))
        except TimeoutError:
            raise AssertionError(f"the probe after {text!r} was not answered; "
                                 f"got {replies}") from None

    async def _frame(self) -> dict[str, Any]:
        frame = await self.client.receive(TIMEOUT)
        if frame["type"] == "error":
            raise AssertionError(f"error frame: {frame}")
        return frame

    def _keep(self, frame: dict[str, Any]) -> Reply:
        reply = Reply(frame["text"], tuple((b["title"], b["payload"])
                                           for b in frame.get("buttons") or []))
        self.seen.append(reply)
        return reply


class TelegramCustomer:
    """A customer in a private Telegram chat with the bot, as `user`."""

    channel = "telegram"

    def __init__(self, rig: ChatRig, user: dict[str, Any]) -> None:
        self.rig, self.user = rig, user
        self.fake = rig.telegram
        self.chat = str(user["id"])
        self.read = 0  # how many of the chat's messages the test has had

    async def say(self, text: str) -> list[Reply]:
        await self._post(message_update(self.fake.new_update_id(), text, user=self.user))
        return await self._probed()

    async def press(self, payload: str) -> list[Reply]:
        pressed = self._latest_with(payload)
        await self._post(callback_update(self.fake.new_update_id(), pressed, payload,
                                         user=self.user))
        return await self._probed()

    async def say_expecting(self, text: str, count: int) -> list[Reply]:
        await self._post(message_update(self.fake.new_update_id(), text, user=self.user))
        return await self.notices(count)

    async def notices(self, count: int) -> list[Reply]:
        try:
            calls = await self._wait(lambda sent: len(sent) >= self.read + count)
        except TimeoutError:
            got = [_reply_of(c) for c in self._messages()[self.read:]]
            raise AssertionError(f"expected {count} messages, got only {got}") from None
        wanted = calls[self.read:self.read + count]
        self.read += count
        return [_reply_of(c) for c in wanted]

    async def customer_id(self) -> str:
        identity = ChannelIdentity("telegram", self.chat)
        return await self.rig.app.segue.store.resolve_customer(identity, "unseen")

    async def _post(self, update: dict[str, Any]) -> None:
        assert await self.fake.post_update(update) == 200

    async def _probed(self) -> list[Reply]:
        await self._post(message_update(self.fake.new_update_id(), PROBE, user=self.user))

        def answered(sent: list[ApiCall]) -> bool:
            return any(PROBE_ANSWER.match(c.params["text"]) for c in sent[self.read:])

        try:
            sent = await self._wait(answered)
        except TimeoutError:
            got = [_reply_of(c) for c in self._messages()[self.read:]]
            raise AssertionError(f"the probe was not answered; got {got}") from None
        at = next(i for i in range(self.read, len(sent))
                  if PROBE_ANSWER.match(sent[i].params["text"]))
        replies = [_reply_of(c) for c in sent[self.read:at]]
        self.read = at + 1
        return replies

    def _messages(self) -> list[ApiCall]:
        return [c for c in self.fake.sent("sendMessage") if c.params["chat_id"] == self.chat]

    async def _wait(self, ready: Callable[[list[ApiCall]], bool]) -> list[ApiCall]:
        """The chat's messages once `ready` holds for them (checked again at
        every call the fake records)."""
        await self.fake.wait_for("sendMessage", where=lambda _: ready(self._messages()),
                                 timeout=TIMEOUT)
        return self._messages()

    def _latest_with(self, payload: str) -> ApiCall:
        for call in reversed(self._messages()[:self.read]):
            if payload in [b["callback_data"] for b in keyboard_of(call)]:
                return call
        raise AssertionError(f"no message offered a button {payload!r}")


def _reply_of(call: ApiCall) -> Reply:
    return Reply(call.params["text"],
                 tuple((b["text"], b["callback_data"]) for b in keyboard_of(call)))


def _title_of(seen: list[Reply], payload: str) -> str:
    for reply in reversed(seen):
        for title, offered in reply.buttons:
            if offered == payload:
                return title
    raise AssertionError(f"no message offered a button {payload!r}")


@dataclass(slots=True)
class ChatRig:
    app: RunningApp
    telegram: FakeTelegram
    http: aiohttp.ClientSession
    users: itertools.count[int]

    async def customer(self, channel: str, *, locale: str | None = None) -> Customer:
        """A new customer on `channel`; `locale` is what the browser's hello
        or Telegram's `language_code` says (Telegram: "en" unless given)."""
        if channel == "web":
            hello: dict[str, Any] = {"locale": locale} if locale is not None else {}
            return WebCustomer(await WebChatClient.connect(self.http, self.app.ws_url, **hello))
        assert channel == "telegram", channel
        user = {**CUSTOMER, "id": next(self.users), "language_code": locale or "en"}
        return TelegramCustomer(self, user)

    async def agent(self, name: str) -> AgentClient:
        return await agent(self.http, self.app, name)


@asynccontextmanager
async def chat_rig(redis_url: str, **overrides: Any) -> AsyncIterator[ChatRig]:
    """The demo bot (or the one in `overrides`' dialogs_dir) on the web chat
    and Telegram. Rate limits are off: every message here is followed by a
    probe, which would use up the web chat's burst in a long conversation."""
    port = free_port()  # Telegram is told the webhook's address before the app starts
    async with FakeTelegram() as telegram:
        settings = handoff_settings(
            telegram_token=TOKEN, telegram_mode="webhook", telegram_webhook_secret="tg-secret-1",
            telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
            telegram_api_url=telegram.url, rate_limits="off", **overrides,
        )
        store = RedisContextStore.from_url(redis_url)  # closed by the app's cleanup
        async with (
            serve_segue(settings, store=store, port=port) as app,
            aiohttp.ClientSession() as http,
        ):
            await add_accounts(app)
            yield ChatRig(app, telegram, http, itertools.count(TELEGRAM_USERS_FROM))
