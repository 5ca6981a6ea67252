"""A local Telegram Bot API server for tests.

It speaks the Bot API wire format (`POST /bot<token>/<method>`, form or JSON
parameters, `{"ok": ..., "result" | "error_code", "description",
"parameters"}` answers), records every call, plays Telegram's side of a
webhook (POSTing updates with the secret header given to `setWebhook`) and
of long polling (`getUpdates` with offsets and a long-poll timeout), and can
be told to refuse calls the way Telegram does (429 with `retry_after`; 403
for a chat whose user blocked the bot or never started it), or to answer a
method with a redirect to itself (a misbehaving proxy).
It can hold calls of a method for a while (a slow Bot API) and drop those
whose bot hung up meanwhile, so a test can kill a worker in mid-send.
Updates are shaped like the examples of the Bot API documentation.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.holding import hung_up_within

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Segue",
    "username": "segue_demo_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# Telegram's words for a message to a person who blocked the bot, and to
# one who never started it.
BLOCKED = "Forbidden: bot was blocked by the user"
NOT_STARTED = "Forbidden: bot can't initiate conversation with a user"
CUSTOMER = {"id": 5551234, "is_bot": False, "first_name": "Dana", "last_name": "Reyes",
            "username": "dreyes", "language_code": "en"}


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request the bot made, with its parameters as sent."""

    method: str
    params: dict[str, str]
    at: float
    result: Any = None

    def json(self, name: str) -> Any:
        return json.loads(self.params[name])


@dataclass(slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None


@dataclass(slots=True)
class FakeTelegram:
    """The Bot API server. Use `async with FakeTelegram() as fake`."""

    token: str = TOKEN
    calls: list[ApiCall] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    blocked_chats: set[int] = field(default_factory=set)
    # Chats every message to which is refused with 403 and these words.
    forbidden_chats: dict[int, str] = field(default_factory=dict)
    url: str = ""
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _redirecting: set[str] = field(default_factory=set)
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _answered: set[str] = field(default_factory=set)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(872310001))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1400))
    _runner: web.AppRunner | None = None
    _client: aiohttp.ClientSession | None = None
    _closing: bool = False
    # Holding calls: method -> (seconds, how many more), the calls held so
    # far, and those dropped because their bot hung up while held.
    _holds: dict[str, tuple[float, int]] = field(default_factory=dict)
    held: list[ApiCall] = field(default_factory=list)
    abandoned: list[ApiCall] = field(default_factory=list)
    # What getWebhookInfo tells of the last failed delivery: (unix time, message).
    webhook_error: tuple[int, str] | None = None
    # Seconds this server's clock is ahead of the machine's, as its Date header shows.
    clock_offset: float = 0.0

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application()
        app.on_response_prepare.append(self._date)
        app.router.add_post("/bot{token}/{method}", self._handle)
        # The Bot API takes GET with query parameters too.
        app.router.add_get("/bot{token}/{method}", self._handle)
        # No access log: request paths carry the bot token.
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._client = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # What the test controls.

    def new_update_id(self) -> int:
        return next(self._ids)

    def message(self, text: str, **shape: Any) -> dict[str, Any]:
        """A message update with the next update id (see `message_update`)."""
        return message_update(self.new_update_id(), text, **shape)

    def fail(self, method: str, *, status: int, description: str,
             retry_after: int | None = None, times: int = 1) -> None:
        """Refuse the next `times` calls of `method`."""
        failure = _Failure(status, description, retry_after)
        self._failures.setdefault(method, []).extend([failure] * times)

    def forbid(self, chat_id: int, description: str = NOT_STARTED) -> None:
        """Refuse every message to `chat_id` with 403 and `description`
        (`BLOCKED` or `NOT_STARTED`), as Telegram does for a user who
        blocked the bot or never started it."""
        self.forbidden_chats[chat_id] = description

    def fail_delivery(self, message: str, *, seconds_ago: float = 0.0) -> None:
        """Have getWebhookInfo report a failed delivery, as Telegram words it
        ("Wrong response from the webhook: 503 Service Unavailable")."""
        self.webhook_error = (int(time.time() - seconds_ago), message)

    def redirect_loop(self, method: str) -> None:
        """Answer every call of `method` with a redirect to the same URL."""
        self._redirecting.add(method)

    def hold(self, method: str = "sendMessage", *, seconds: float, times: int = 1) -> None:
        """Keep the next `times` calls of `method` waiting `seconds` before
        they are handled. A call whose bot hung up meanwhile is dropped (in
        `abandoned`): Telegram never got it whole, so it sends nothing."""
        self._holds[method] = (seconds, times)

    async def wait_holding(self, method: str = "sendMessage", count: int = 1, *,
                           timeout: float = 10.0) -> list[ApiCall]:
        """Wait until `count` calls of `method` have been held."""
        def holding() -> list[ApiCall]:
            return [c for c in self.held if c.method == method]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(holding()) >= count),
                                   timeout)
        return holding()

    async def wait_abandoned(self, count: int = 1, *, timeout: float = 10.0) -> None:
        """Wait until `count` held calls were dropped because their bot hung up."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.abandoned) >= count),
                                   timeout)

    def texts_sent(self, method: str = "sendMessage") -> list[str]:
        """The text of every accepted call of `method`, in the order sent."""
        return [c.params.get("text", "") for c in self.sent(method)]

    async def _held(self, request: web.Request, method: str, params: dict[str, str]) -> bool:
        """Hold the call if told to; False if its bot hung up meanwhile."""
        seconds, times = self._holds.get(method, (0.0, 0))
        if times <= 0:
            return True
        self._holds[method] = (seconds, times - 1)
        call = ApiCall(method, params, time.monotonic(), "held")
        async with self._changed:
            self.held.append(call)
            self._changed.notify_all()
        if await hung_up_within(request, seconds):
            async with self._changed:
                self.abandoned.append(call)
                self._changed.notify_all()
            return False
        return True

    def redirects(self, method: str) -> int:
        """How many calls of `method` were answered with a redirect."""
        return sum(1 for c in self.calls if c.method == method and c.result == "redirect")

    async def post_update(self, update: dict[str, Any], *, secret: str | None = None,
                          body: bytes | None = None) -> int:
        """Deliver one update to the webhook as Telegram does; the HTTP status.
        `secret` overrides the one given to setWebhook ('' sends none)."""
        assert self.webhook is not None and self._client is not None, "no webhook set"
        token = self.webhook.get("secret_token", "") if secret is None else secret
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        data = body if body is not None else json.dumps(update).encode()
        async with self._client.post(self.webhook["url"], data=data, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def queue_update(self, update: dict[str, Any]) -> None:
        """Make an update available to getUpdates (polling mode)."""
        async with self._changed:
            self._pending.append(update)
            self._changed.notify_all()

    async def queue_updates(self, updates: list[dict[str, Any]]) -> None:
        """Make several updates available at once: one getUpdates gets them all."""
        async with self._changed:
            self._pending.extend(updates)
            self._changed.notify_all()

    async def wait_for(self, method: str, count: int = 1, *,
                       where: Callable[[ApiCall], bool] = lambda c: True,
                       timeout: float = 5.0) -> list[ApiCall]:
        """Wait until `count` matching calls of `method` were recorded."""
        def matching() -> list[ApiCall]:
            return [c for c in self.calls if c.method == method and where(c)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count),
                                   timeout)
        return matching()

    def sent(self, method: str = "sendMessage") -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    # The server.

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        if method in self._redirecting:
            await self._record(ApiCall(method, {}, time.monotonic(), "redirect"))
            raise web.HTTPFound(location=request.path)
        params = await _read_params(request)
        if not await self._held(request, method, params):
            # The bot hung up while the call was held: it never reached Telegram.
            return _error(499, "Client Closed Request")
        failures = self._failures.get(method)
        if failures:
            failure = failures.pop(0)
            await self._record(ApiCall(method, params, time.monotonic()))
            return _error(failure.status, failure.description, failure.retry_after)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        return await handler(params)

    async def _date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = formatdate(time.time() + self.clock_offset, usegmt=True)

    async def _record(self, call: ApiCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _ok(self, method: str, params: dict[str, str], result: Any) -> web.Response:
        await self._record(ApiCall(method, params, time.monotonic(), result))
        return web.json_response({"ok": True, "result": result})

    async def _api_getMe(self, params: dict[str, str]) -> web.Response:
        return await self._ok("getMe", params, BOT_USER)

    async def _api_setWebhook(self, params: dict[str, str]) -> web.Response:
        self.webhook = dict(params)
        return await self._ok("setWebhook", params, True)

    async def _api_getWebhookInfo(self, params: dict[str, str]) -> web.Response:
        # The Bot API's WebhookInfo; it never tells the secret token.
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False,
                                "pending_update_count": len(self._pending)}
        if self.webhook is not None:
            info["url"] = self.webhook.get("url", "")
            info["ip_address"] = "127.0.0.1"
            info["max_connections"] = int(self.webhook.get("max_connections") or 40)
            if "allowed_updates" in self.webhook:
                info["allowed_updates"] = json.loads(self.webhook["allowed_updates"])
        if self.webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self.webhook_error
        return await self._ok("getWebhookInfo", params, info)

    async def _api_deleteWebhook(self, params: dict[str, str]) -> web.Response:
        self.webhook = None
        return await self._ok("deleteWebhook", params, True)

    async def _api_getUpdates(self, params: dict[str, str]) -> web.Response:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        await self._record(ApiCall("getUpdates", params, time.monotonic()))
        async with self._changed:
            # An offset confirms every update before it: they are gone for good.
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: bool(self._pending) or self._closing), timeout
                )
            except TimeoutError:
                pass
            updates = list(self._pending[:100])
        return web.json_response({"ok": True, "result": updates})

    async def _api_sendMessage(self, params: dict[str, str]) -> web.Response:
        refused = self._refused(params)
        if refused is not None:
            return refused
        result = self._message(params, text=params["text"])
        return await self._ok("sendMessage", params, result)

    async def _api_sendPhoto(self, params: dict[str, str]) -> web.Response:
        refused = self._refused(params)
        if refused is not None:
            return refused
        result = self._message(params, photo=[{"file_id": "AgACAgIAAxkBAAIC", "file_unique_id":
                                               "AQADAgAT", "width": 640, "height": 480}])
        if params.get("caption"):
            result["caption"] = params["caption"]
        return await self._ok("sendPhoto", params, result)

    async def _api_sendChatAction(self, params: dict[str, str]) -> web.Response:
        return await self._ok("sendChatAction", params, True)

    async def _api_answerCallbackQuery(self, params: dict[str, str]) -> web.Response:
        if params["callback_query_id"] in self._answered:
            await self._record(ApiCall("answerCallbackQuery", params, time.monotonic()))
            return _error(400, "Bad Request: query is too old and response timeout expired "
                               "or query ID is invalid")
        self._answered.add(params["callback_query_id"])
        return await self._ok("answerCallbackQuery", params, True)

    def _refused(self, params: dict[str, str]) -> web.Response | None:
        chat_id = int(params["chat_id"])
        if chat_id in self.forbidden_chats:
            return _error(403, self.forbidden_chats[chat_id])
        if chat_id in self.blocked_chats:
            return _error(403, BLOCKED)
        if "text" in params and not params["text"].strip():
            return _error(400, "Bad Request: message text is empty")
        if len(params.get("text", "").encode("utf-16-le")) // 2 > 4096:
            return _error(400, "Bad Request: message is too long")
        return None

    def _message(self, params: dict[str, str], **content: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": {"id": chat_id, "first_name": "Dana", "username": "dreyes", "type": "private"},
            "date": int(time.time()),
            **content,
        }
        if "reply_markup" in params:
            message["reply_markup"] = json.loads(params["reply_markup"])
        return message


async def _read_params(request: web.Request) -> dict[str, str]:
    if request.method == "GET":
        return dict(request.query)
    if request.content_type == "application/json":
        data = await request.json()
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    form = await request.post()
    return {k: str(v) for k, v in form.items()}


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


# Updates, shaped like the Bot API documentation's examples.

def message_update(update_id: int, text: str, *, user: dict[str, Any] = CUSTOMER,
                   chat_type: str = "private") -> dict[str, Any]:
    chat = {"id": user["id"], "first_name": user["first_name"], "type": chat_type}
    if chat_type != "private":
        chat = {"id": -1001234567890, "title": "Support group", "type": chat_type}
    message: dict[str, Any] = {
        "message_id": update_id % 100000, "date": int(time.time()),
        "from": user, "chat": chat, "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"offset": 0, "length": len(text.split(" ")[0]),
                                "type": "bot_command"}]
    return {"update_id": update_id, "message": message}


def sticker_update(update_id: int, *, user: dict[str, Any] = CUSTOMER) -> dict[str, Any]:
    update = message_update(update_id, "", user=user)
    del update["message"]["text"]
    update["message"]["sticker"] = {
        "file_id": "CAACAgIAAxkBAAIBQ2VhYmNk", "file_unique_id": "AgADQwEAAm", "type": "regular",
        "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "👍",
    }
    return update


def callback_update(update_id: int, sent: ApiCall, data: str, *,
                    user: dict[str, Any] = CUSTOMER) -> dict[str, Any]:
    """The customer pressing the button with `data` on a message the bot sent."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"43{update_id}", "chat_instance": "-7081216305566104318",
            "from": user, "message": sent.result, "data": data,
        },
    }


def keyboard_of(call: ApiCall) -> list[dict[str, Any]]:
    """The buttons of a sent message's inline keyboard, row by row flattened."""
    if "reply_markup" not in call.params:
        return []
    return [b for row in call.json("reply_markup")["inline_keyboard"] for b in row]
