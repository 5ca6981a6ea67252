"""A local Slack Web API for tests: speaks Slack's wire format on loopback
(`POST /api/<method>` with a bearer token, form or JSON arguments, `{"ok":…}`
answers, 429 with Retry-After), records every call, and lets a test await
them. It also serves Socket Mode: `apps.connections.open` hands out a
WebSocket on this server, where a test can push envelopes and await acks.

`sign` and `signed_headers` sign request bodies exactly as Slack does.
A test can hold calls of a method for a while (a slow Web API); a call whose
app hung up meanwhile is dropped, as if it never reached Slack. `users.info`
knows every user id, each with the locale a test gives it (`set_locale`).
`conversations.open` opens (and opens again) one direct message channel per
user, unless a test made Slack refuse that user (`refuse_dm`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.holding import hung_up_within

TEAM_ID = "T061EG9R6"
BOT_USER_ID = "U0BOTUSER"
BOT_ID = "B0BOTID"
# The locale users.info gives a user no test gave one: a workspace's default.
DEFAULT_LOCALE = "en-US"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, *, timestamp: int | None = None, retry: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with `body`; `retry` adds the redelivery ones."""
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(secret, body, ts)}
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API call as the fake received it."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float  # time.monotonic() when received
    status: int  # what the fake answered
    response: dict[str, Any]
    peer: str = ""  # the caller's address and port: one per connection


@dataclass(slots=True)
class _Refusal:
    times: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlackApi:
    """The Slack Web API on 127.0.0.1, as much of it as Segue uses."""

    def __init__(self, *, token: str, app_token: str | None = None) -> None:
        self.token = token
        self.app_token = app_token
        self.calls: list[ApiCall] = []
        self.socket_acks: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._refusals: dict[str, list[_Refusal]] = {}
        self._ts = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        # Holding calls: method -> (seconds, how many more), the calls held
        # so far, and those dropped because their app hung up while held.
        self._holds: dict[str, tuple[float, int]] = {}
        self.held: list[tuple[str, dict[str, Any]]] = []
        self.abandoned: list[tuple[str, dict[str, Any]]] = []
        # Seconds this server's clock is ahead of the machine's, as its Date header shows.
        self.clock_offset = 0.0
        # users.info: each user's locale, by user id.
        self.locales: dict[str, str] = {}
        # conversations.open: each user's direct message channel, and the
        # users Slack opens none with (by the error it answers).
        self.dm_channels: dict[str, str] = {}
        self.dm_refusals: dict[str, str] = {}
        self._dm_ids = itertools.count(1)

    async def __aenter__(self) -> FakeSlackApi:
        app = web.Application()
        app.on_response_prepare.append(self._date)
        app.router.add_post("/api/{method}", self._api)
        # slack_sdk calls a few methods (users.info) with GET and query arguments.
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/actions/{path:.*}", self._response_url)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/api/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # Steering the fake.

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and Retry-After."""
        self._refusals.setdefault(method, []).append(
            _Refusal(
                times, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            )
        )

    def refuse(self, method: str, error: str, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `{"ok": false}`."""
        self._refusals.setdefault(method, []).append(
            _Refusal(times, 200, {"ok": False, "error": error})
        )

    def set_locale(self, user: str, locale: str) -> None:
        """The locale users.info gives `user` when asked with include_locale."""
        self.locales[user] = locale

    def refuse_dm(self, user: str, error: str = "user_not_found") -> None:
        """Have conversations.open refuse `user` with `error` (Slack's
        `user_not_found`, `cannot_dm_bot`, `user_disabled`)."""
        self.dm_refusals[user] = error

    def dm_channel(self, user: str) -> str:
        """The direct message channel conversations.open gives `user`."""
        if user not in self.dm_channels:
            self.dm_channels[user] = f"D{next(self._dm_ids):08d}"
        return self.dm_channels[user]

    def hold(self, method: str = "chat.postMessage", *, seconds: float, times: int = 1) -> None:
        """Keep the next `times` calls of `method` waiting `seconds` before
        they are answered. A call whose app hung up meanwhile is dropped (in
        `abandoned`): Slack never got it whole, so it posts nothing."""
        self._holds[method] = (seconds, times)

    async def wait_holding(self, method: str = "chat.postMessage", count: int = 1,
                           timeout: float = 10.0) -> None:
        """Wait until `count` calls of `method` have been held."""
        await self._wait(lambda: sum(1 for m, _ in self.held if m == method) >= count, timeout)

    async def wait_abandoned(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until `count` held calls were dropped because their app hung up."""
        await self._wait(lambda: len(self.abandoned) >= count, timeout)

    def texts_posted(self) -> list[str]:
        """The text of every chat.postMessage Slack accepted, in the order posted."""
        return [str(args.get("text", "")) for args in self.posted()]

    async def _held(self, request: web.Request, method: str, args: dict[str, Any]) -> bool:
        """Hold the call if told to; False if its app hung up meanwhile."""
        seconds, times = self._holds.get(method, (0.0, 0))
        if times <= 0:
            return True
        self._holds[method] = (seconds, times - 1)
        async with self._changed:
            self.held.append((method, args))
            self._changed.notify_all()
        if await hung_up_within(request, seconds):
            async with self._changed:
                self.abandoned.append((method, args))
                self._changed.notify_all()
            return False
        return True

    # Reading what happened.

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def posted(self) -> list[dict[str, Any]]:
        """Arguments of every chat.postMessage that Slack accepted."""
        return [c.args for c in self.calls_to("chat.postMessage") if c.status == 200]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[ApiCall]:
        """The first `count` calls of `method`, once that many were received."""
        await self._wait(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)[:count]

    async def wait_posted(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        await self._wait(lambda: len(self.posted()) >= count, timeout)
        return self.posted()[:count]

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = formatdate(time.time() + self.clock_offset, usegmt=True)

    async def _record(self, call: ApiCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # The Web API.

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        if not await self._held(request, method, args):
            # The app hung up while the call was held: it never reached Slack.
            return web.json_response({"ok": False, "error": "request_abandoned"}, status=499)
        status, body, headers = self._answer(method, args, token)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        await self._record(ApiCall(method, args, token, time.monotonic(), status, body,
                                   f"{peer[0]}:{peer[1]}" if peer else ""))
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        expected = self.app_token if method == "apps.connections.open" else self.token
        if token != expected:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        refusals = self._refusals.get(method)
        if refusals:
            refusal = refusals[0]
            refusal.times -= 1
            if refusal.times <= 0:
                refusals.pop(0)
            return refusal.status, refusal.body, refusal.headers
        if method == "auth.test":
            return (
                200,
                {
                    "ok": True,
                    "url": "https://example.slack.com/",
                    "team": "Example",
                    "user": "segue",
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID,
                    "is_enterprise_install": False,
                },
                {},
            )
        if method == "chat.postMessage":
            return self._post_message(args)
        if method == "users.info":
            return self._user_info(args)
        if method == "conversations.open":
            return self._open_conversation(args)
        if method == "apps.connections.open":
            return 200, {"ok": True, "url": f"ws://{self.base.removeprefix('http://')}/socket"}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _post_message(self, args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        channel = args.get("channel")
        if not channel:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        if not args.get("text") and not args.get("blocks"):
            return 200, {"ok": False, "error": "no_text"}, {}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {
            "type": "message",
            "text": args.get("text", ""),
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
        }
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}, {}

    def _open_conversation(
        self, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        users = str(args.get("users") or "")
        if not users:
            return 200, {"ok": False, "error": "users_list_not_supplied"}, {}
        if "," in users:  # a group DM: not one Segue opens
            return 200, {"ok": False, "error": "not_implemented_in_fake"}, {}
        if users in self.dm_refusals:
            return 200, {"ok": False, "error": self.dm_refusals[users]}, {}
        # Slack answers with the channel's id alone unless asked for more.
        return 200, {"ok": True, "channel": {"id": self.dm_channel(users)}}, {}

    def _user_info(self, args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        user_id = args.get("user")
        if not user_id:
            return 200, {"ok": False, "error": "user_not_found"}, {}
        name = f"user-{str(user_id).lower()}"
        user: dict[str, Any] = {
            "id": user_id, "team_id": TEAM_ID, "name": name, "deleted": False,
            "color": "9f69e7", "real_name": name, "tz": "Europe/Berlin",
            "tz_label": "Central European Time", "tz_offset": 3600,
            "profile": {"real_name": name, "display_name": name,
                        "real_name_normalized": name, "display_name_normalized": name,
                        "team": TEAM_ID},
            "is_admin": False, "is_owner": False, "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": False,
            "is_app_user": False, "updated": 1763900000, "has_2fa": False,
        }
        # Slack gives the locale only to those who ask for it.
        if str(args.get("include_locale", "")).lower() in ("1", "true"):
            user["locale"] = self.locales.get(str(user_id), DEFAULT_LOCALE)
        return 200, {"ok": True, "user": user}, {}

    # Response URLs (what interaction payloads carry as `response_url`).

    def response_url(self, path: str) -> str:
        """A response URL on this fake, as Slack would put in a payload."""
        return f"{self.base}/actions/{path}"

    def responses(self) -> list[dict[str, Any]]:
        """Every message posted to a response URL, with its path under `_path`."""
        return [c.args for c in self.calls_to("response_url")]

    async def _response_url(self, request: web.Request) -> web.Response:
        # Slack takes a message as JSON here, with no token, and says "ok".
        data = await request.json()
        args = {"_path": request.match_info["path"], **(data if isinstance(data, dict) else {})}
        await self._record(ApiCall("response_url", args, None, time.monotonic(), 200, {}))
        return web.Response(text="ok")

    # Socket Mode.

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake"},
                "connection_info": {"app_id": "A0"},
            }
        )
        async with self._changed:
            self._changed.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    async with self._changed:
                        self.socket_acks.append(json.loads(msg.data))
                        self._changed.notify_all()
        finally:
            self._sockets.remove(ws)
        return ws

    async def wait_socket(self, timeout: float = 10.0) -> None:
        await self._wait(lambda: bool(self._sockets), timeout)

    async def push_envelope(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to the connected app."""
        await self._sockets[0].send_json(envelope)

    async def wait_socket_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        def acked() -> bool:
            return any(a.get("envelope_id") == envelope_id for a in self.socket_acks)

        await self._wait(acked, timeout)
        return next(a for a in self.socket_acks if a.get("envelope_id") == envelope_id)


async def _arguments(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        return dict(data) if isinstance(data, dict) else {}
    form = await request.post()
    args: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    args.update({k: v for k, v in request.query.items()})
    for key in ("blocks", "attachments"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args
