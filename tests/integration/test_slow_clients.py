"""Slow clients and connection floods against Segue's real server: raw sockets
that send nothing, dribble their headers, never finish a body or sit idle
after a request, and more connections from one address than it may open."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from yarl import URL

from bot.core.settings import Settings
from tests.support.app_server import RunningApp, serve_segue
from tests.support.policies import EchoMenuPolicy
from tests.support.webchat_client import WebChatClient

# Far longer than any test runs: the deadline a test is not about stays out of its way.
NEVER = 600.0
# How long a test waits for the server to act; a deadline under test is far shorter.
BOUND = 5.0

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def segue(**limits: Any) -> AsyncIterator[RunningApp]:
    values: dict[str, Any] = {
        "webchat_secret": "slow-clients-web-secret",
        "http_header_timeout_seconds": NEVER,
        "http_body_timeout_seconds": NEVER,
        "http_keepalive_timeout_seconds": NEVER,
    }
    values.update(limits)
    async with serve_segue(Settings(**values), policy=EchoMenuPolicy()) as app:
        yield app


async def connect(app: RunningApp) -> Connection:
    url = URL(app.base_url)
    return await asyncio.open_connection(url.host, url.port)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before it closed the connection."""

    async def read_to_end() -> bytes:
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""

    return await asyncio.wait_for(read_to_end(), BOUND)


async def get(connection: Connection, path: str = "/healthz") -> int:
    """One keep-alive GET on an open connection; the response's status."""
    reader, writer = connection
    writer.write(f"GET {path} HTTP/1.1\r\nHost: segue.test\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    await reader.readexactly(int(headers["Content-Length"]))
    return int(lines[0].split()[1])


async def hang_up(connection: Connection) -> None:
    """Close from the client's side and wait until the server has closed too."""
    reader, writer = connection
    writer.write_eof()
    assert await closed_by_server(reader) == b""
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline() -> None:
    async with segue(http_header_timeout_seconds=0.5) as app:
        reader, writer = await connect(app)
        # Never started a request: closed without an answer, as idle.
        assert await closed_by_server(reader) == b""
        writer.close()


async def test_headers_dribbled_byte_by_byte_are_cut_off_at_the_header_deadline() -> None:
    async with segue(http_header_timeout_seconds=0.5) as app:
        reader, writer = await connect(app)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: segue.test\r\nX-Slow: ")

        async def dribble() -> None:
            for byte in itertools.cycle(b"abc"):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)  # the attacker's pace: a byte at a time

        sending = asyncio.create_task(dribble())
        try:
            answer = await closed_by_server(reader)
            assert not sending.done(), "the client stopped sending; the test proves nothing"
        finally:
            sending.cancel()
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize(("started", "status"), [
    # The login handler reads its body before anything else: 408.
    pytest.param(b"POST /agent/api/login HTTP/1.1\r\nHost: segue.test\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
                 b'{"username": "a', b"408", id="a-body-being-read-gets-408"),
    # Answered (405) without reading the body, whose rest never comes.
    pytest.param(b"POST /healthz HTTP/1.1\r\nHost: segue.test\r\n"
                 b"Content-Length: 1000000\r\n\r\nabc", b"405", id="an-unread-body-is-closed"),
])
async def test_a_body_that_never_arrives_is_cut_off_at_the_body_deadline(
    started: bytes, status: bytes
) -> None:
    async with segue(http_body_timeout_seconds=0.5) as app:
        reader, writer = await connect(app)
        writer.write(started)
        answer = await closed_by_server(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 " + status + b" ")


async def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() -> None:
    async with segue(http_keepalive_timeout_seconds=0.5) as app:
        connection = await connect(app)
        assert await get(connection) == 200
        assert await closed_by_server(connection[0]) == b""
        connection[1].close()


async def test_a_web_chat_socket_outlives_every_deadline(http: aiohttp.ClientSession) -> None:
    async with segue(http_header_timeout_seconds=0.3, http_body_timeout_seconds=0.3,
                     http_keepalive_timeout_seconds=0.3) as app:
        client = await WebChatClient.connect(http, app.ws_url)
        # A clock without sleeping: a connection opened after the socket's
        # upgrade is closed by the deadlines, so they have passed for it too.
        reader, writer = await connect(app)
        assert await closed_by_server(reader) == b""
        writer.close()
        replies = await client.turn("still there?")
        assert replies[0]["text"] == "You said: still there?"
        await client.close()


async def three_served_then_one_closed(app: RunningApp) -> list[Connection]:
    """Three keep-alive connections, each answering a GET; then a fourth,
    which the server closes without a word."""
    served = [await connect(app) for _ in range(3)]
    assert [await get(c) for c in served] == [200, 200, 200]
    reader, writer = await connect(app)
    assert await closed_by_server(reader) == b""
    writer.close()
    return served


async def test_connections_per_address_are_capped_and_counted_while_open() -> None:
    before = refused_connections()
    async with segue(max_connections_per_address=3) as app:
        first = await three_served_then_one_closed(app)  # the fourth refused at once
        for connection in first:
            await hang_up(connection)
        # Closed ones no longer count, and refused ones never did.
        again = await three_served_then_one_closed(app)
        for connection in again:
            await hang_up(connection)
    assert refused_connections() == before + 2


def refused_connections() -> float:
    """What /metrics shows as segue_rate_limited_total{limit="connections-addr"}."""
    return REGISTRY.get_sample_value("segue_rate_limited_total",
                                     {"limit": "connections-addr"}) or 0.0


@pytest.mark.parametrize("uncapped", [{"rate_limits": "off"},
                                      {"trusted_proxy_header": "X-Forwarded-For"}])
async def test_without_a_cap_by_peer_address_the_deadlines_still_apply(
    uncapped: dict[str, str]
) -> None:
    async with segue(max_connections_per_address=1, http_header_timeout_seconds=0.5,
                     **uncapped) as app:
        # Three served over a cap of one; the fourth, silent, closed at the deadline.
        connections = await three_served_then_one_closed(app)
        for connection in connections:
            await hang_up(connection)
