"""A small web chat WebSocket client for tests and benchmarks."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from typing import Any

import aiohttp

# Answered on any channel, in any state, even while a person holds the
# conversation: what proves a turn that must stay silent is over.
PROBE = "channels"
PROBE_ANSWER = "This conversation is linked with:"
WEB_LINK = "Continue on the web"


def forwarded(address: str | None) -> dict[str, str]:
    """The header a trusted proxy adds to name the client at `address`."""
    return {"X-Forwarded-For": address} if address is not None else {}


async def raw_hello(
    http: aiohttp.ClientSession, url: str, *, forwarded_for: str | None = None,
    timeout: float = 10, **hello: Any,
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A socket that has sent its hello, and the first frame it got back
    (a `session`, or the `error` that refused it)."""
    ws = await http.ws_connect(url, headers=forwarded(forwarded_for))
    await ws.send_str(json.dumps({"type": "hello", **hello}))
    answer = await ws.receive(timeout=timeout)
    assert answer.type == aiohttp.WSMsgType.TEXT, (answer.type, answer.data)
    first: dict[str, Any] = json.loads(answer.data)
    return ws, first


class WebChatClient:
    """Speaks the web chat protocol of docs/protocol.md over one socket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session: str | None = None
        self.customer: str | None = None
        self.history: list[dict[str, Any]] = []
        # Ids unique per client object, as the widget's random ids are, so a
        # client reconnecting with the same session never repeats one.
        self._prefix = secrets.token_hex(3)
        self._ids = itertools.count(1)

    @classmethod
    async def connect(
        cls, http: aiohttp.ClientSession, url: str, *, session: str | None = None,
        forwarded_for: str | None = None, headers: dict[str, str] | None = None,
        **hello: Any,
    ) -> WebChatClient:
        """A client that has said hello (with `session`, and any other hello
        fields), from `forwarded_for` as a trusted proxy names it, its
        handshake carrying `headers` too."""
        sent = {**(headers or {}), **forwarded(forwarded_for)}
        client = cls(await http.ws_connect(url, headers=sent))
        await client.hello(session=session, **hello)
        return client

    async def hello(self, *, session: str | None = None, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": "hello", **extra}
        if session is not None:
            frame["session"] = session
        await self.send(frame)
        first = await self.receive()
        if first["type"] != "session":
            raise AssertionError(f"expected a session frame, got {first}")
        self.session, self.customer = first["session"], first["customer"]
        history = await self.receive()
        assert history["type"] == "history", history
        self.history = history["messages"]

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type}: {msg.data!r}")
        frame: dict[str, Any] = json.loads(msg.data)
        return frame

    async def next_frame(self, timeout: float = 10) -> dict[str, Any]:
        """The next frame that is not a typing indicator."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] != "typing":
                return frame

    async def next_message(self, timeout: float = 15) -> dict[str, Any]:
        """The next message frame; only acks and typing may come before it."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.receive(timeout)
                if frame["type"] == "message":
                    return frame
                assert frame["type"] in ("typing", "ack"), frame

    async def say(self, text: str, *, payload: str | None = None, msg_id: str | None = None) -> str:
        msg_id = msg_id or f"m{self._prefix}-{next(self._ids)}"
        frame: dict[str, Any] = {"type": "message", "text": text, "id": msg_id}
        if payload is not None:
            frame["payload"] = payload
        await self.send(frame)
        return msg_id

    async def turn(
        self, text: str, *, payload: str | None = None, expect: int = 1
    ) -> list[dict[str, Any]]:
        """Send a message; return its replies once the ack and `expect`
        replies marked with its id have arrived (typing frames are skipped).
        `expect=0` means the message must get no reply at all: see `silent`."""
        if expect == 0:
            await self.silent(text, payload=payload)
            return []
        msg_id = await self.say(text, payload=payload)
        acked, replies = False, []
        while not (acked and len(replies) >= expect):
            frame = await self.receive()
            if frame["type"] == "ack" and frame["id"] == msg_id:
                acked = True
            elif frame["type"] == "message" and frame.get("reply_to") == msg_id:
                replies.append(frame)
            elif frame["type"] == "error":
                raise AssertionError(f"error frame: {frame}")
        return replies

    async def web_link(self) -> str:
        """Ask for a link; the address of its "Continue on the web"."""
        [reply] = await self.turn("link")
        [url] = [link["url"] for link in reply["links"] if link["title"] == WEB_LINK]
        return str(url)

    async def outcomes(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """What each message sent with `ids` got, in the order sent: its `ack`
        or an `error` (a socket's frames are handled one after another, so the
        n-th ack-or-error answers the n-th message)."""
        got: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(120):
            for msg_id in ids:
                while True:
                    frame = await self.receive(60)
                    if frame["type"] == "ack":
                        assert frame["id"] == msg_id, (msg_id, frame)
                        break
                    if frame["type"] == "error":
                        break
                    assert frame["type"] in ("message", "typing"), frame
                got[msg_id] = frame
        return got

    async def silent(
        self, text: str, *, payload: str | None = None, msg_id: str | None = None
    ) -> None:
        """Send a message that must get no reply from the bot, and prove it:
        its `ack` comes, then `nothing_more` holds."""
        msg_id = await self.say(text, payload=payload, msg_id=msg_id)
        await self.nothing_more(ack=msg_id, about=repr(text))

    async def nothing_more(self, *, ack: str | None = None, about: str = "a message") -> None:
        """Prove the bot says nothing more to what was sent before (the `ack`
        comes before any reply, so it proves nothing). A probe (`channels`)
        is sent that is always answered, even while a person holds the
        conversation (linking commands are taken before the handoff); one
        socket's messages are handled one at a time, in order, so whatever
        the bot says to earlier messages arrives before the probe's answer.
        Any bot message before it fails; so does a probe answered before the
        `ack` of message `ack`. (The probe is a turn of its own: it is stored,
        shown to the agents, and replaces a pending link question.)"""
        probe_id = await self.say(PROBE)
        acked = ack is None
        while True:
            frame = await self.receive()
            kind = frame["type"]
            if kind == "error":
                raise AssertionError(f"error frame: {frame}")
            if kind == "ack" and frame["id"] == ack:
                acked = True
            elif kind != "message":
                continue
            elif frame.get("reply_to") == probe_id:
                if not acked:
                    raise AssertionError(f"the probe was answered before {about} was acked")
                if not frame["text"].startswith(PROBE_ANSWER):
                    raise AssertionError(f"the probe got an unexpected answer: {frame}")
                return
            elif frame.get("sender") == "bot" or (ack and frame.get("reply_to") == ack):
                raise AssertionError(f"the bot answered {about}, which needs no reply: {frame}")

    async def close(self) -> None:
        await self.ws.close()
