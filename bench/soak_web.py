"""A web chat visitor of the soak test (`bench/soak.py`), speaking the
protocol of docs/protocol.md §1: hello, message, ack. A socket that dies is
opened again on a live worker with the session token, and the message not
yet acked is sent again with the same id.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.soak_load import Customer, Load, Sent, retry_delays, text_of

WEB_ACK_TIMEOUT_SECONDS = 30.0
# How often a visitor loads another page before writing: the socket closes
# and the next opens on whichever worker the balancer picks, so the visitors
# stay spread over both workers however many were killed.
PAGE_LOAD_CHANCE = 0.1


class _Closed(Exception):
    """The socket closed (or never opened) before the answer came."""


class WebSender:
    """A web chat visitor: one socket at a time, opened again when it dies."""

    def __init__(self, customer: Customer, load: Load) -> None:
        self.customer = customer
        self.load = load
        self.session: str | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answer: asyncio.Future[dict[str, Any]] | None = None

    def message_id(self, n: int) -> str:
        return f"{self.customer.name}-{n}"

    async def deliver(self, sent: Sent) -> None:
        frame = {"type": "message", "id": self.message_id(sent.n), "text": text_of(sent.n)}
        delays = retry_delays()
        if self.ws is not None and self.load.rng.random() < PAGE_LOAD_CHANCE:
            self.load.tally["web: page loaded, socket opened again"] += 1
            await self._drop()
        while True:
            try:
                await self._connected()
                sent.attempts += 1
                answer = await self._ask(frame)
            except _Closed:
                self.load.tally["web: socket lost or not opened, message sent again"] += 1
                await self._drop()
                await asyncio.sleep(next(delays))
                continue
            if answer["type"] == "ack":
                sent.accepted_at = time.monotonic()
                return
            code = answer.get("code", "?")
            self.load.tally[f"web: error {code}"] += 1
            if code == "rate_limited":
                await asyncio.sleep(float(answer.get("retry_after", 1)))
            elif code in ("busy", "store_unavailable", "store_error"):
                await asyncio.sleep(next(delays))  # nothing was saved: send again
            else:
                raise RuntimeError(f"web chat refused a soak message: {code}")

    async def close(self) -> None:
        await self._drop()

    async def _connected(self) -> None:
        if self.ws is not None:
            if not self.ws.closed:
                return
            self.load.tally["web: socket closed by the server, opened again"] += 1
        await self._drop()
        worker = await self.load.balancer.pick()
        try:
            ws = await self.load.http.ws_connect(f"{worker.url}/webchat/ws", heartbeat=None)
        except (aiohttp.ClientError, OSError) as exc:
            raise _Closed() from exc
        try:
            await self._hello(ws)
        except BaseException:
            await ws.close()
            raise
        self.ws = ws
        self._reader = asyncio.create_task(self._read(ws))

    async def _hello(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        hello: dict[str, Any] = {"type": "hello"}
        if self.session is not None:
            hello["session"] = self.session
        try:
            await ws.send_str(json.dumps(hello))
            first = await self._frame(ws)
        except (aiohttp.ClientError, OSError, ConnectionResetError, TimeoutError) as exc:
            raise _Closed() from exc
        if first.get("type") == "error":
            code = first.get("code", "?")
            self.load.tally[f"web: hello refused {code}"] += 1
            if code in ("session_invalid", "session_expired", "too_many_sockets"):
                raise RuntimeError(f"web chat refused the session: {code}")
            raise _Closed()
        if first.get("type") != "session":
            raise RuntimeError(f"web chat answered hello with {first.get('type')}")
        self.session = first["session"]
        customer = str(first["customer"])
        if customer not in self.customer.customer_ids:
            self.customer.customer_ids.append(customer)
        try:
            history = await self._frame(ws)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Closed() from exc
        if history.get("type") != "history":
            raise RuntimeError(f"web chat sent {history.get('type')} instead of history")

    async def _frame(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        msg = await ws.receive(timeout=WEB_ACK_TIMEOUT_SECONDS)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise _Closed()
        frame: dict[str, Any] = json.loads(msg.data)
        return frame

    async def _ask(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send `frame`; the ack or error that answers it."""
        assert self.ws is not None
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answer = answer
        try:
            await self.ws.send_str(json.dumps(frame))
            return await asyncio.wait_for(asyncio.shield(answer), WEB_ACK_TIMEOUT_SECONDS)
        except (aiohttp.ClientError, OSError, ConnectionResetError, TimeoutError) as exc:
            raise _Closed() from exc
        finally:
            self._answer = None

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                self.load.last_frame_at = time.monotonic()
                self._on_frame(json.loads(msg.data))
        finally:
            if self._answer is not None and not self._answer.done():
                self._answer.set_exception(_Closed())

    def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in ("ack", "error"):
            if self._answer is not None and not self._answer.done():
                self._answer.set_result(frame)
            return
        if kind != "message" or not isinstance(frame.get("reply_to"), str):
            return
        prefix, _, number = frame["reply_to"].rpartition("-")
        if prefix != self.customer.name or not number.isdigit():
            self.load.tally["web: reply to a message of no one's"] += 1
            return
        n = int(number)
        if not 1 <= n <= len(self.customer.sent):
            self.load.tally["web: reply to a message never sent"] += 1
            return
        sent = self.customer.sent[n - 1]
        sent.reply_frames += 1
        if sent.reply_at is None:
            sent.reply_at = time.monotonic()

    async def _drop(self) -> None:
        ws, self.ws = self.ws, None
        reader, self._reader = self._reader, None
        if ws is not None:
            await ws.close()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
