"""What passes between a Redis client and Redis: a connection class that
records each write to its socket, and a loopback proxy that can keep the
requests or the answers back, so a test knows what is in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import hiredis
import redis.asyncio as aioredis
from yarl import URL


class SocketWrites:
    """Every write made on the sockets of one pool's connections (a counter
    in the connection class a test gives the pool)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.connections = 0

    def connection_class(self) -> type[aioredis.Connection]:
        writes = self

        class CountedConnection(aioredis.Connection):
            async def _connect(self) -> None:
                await super()._connect()  # type: ignore[no-untyped-call]
                writes.connections += 1
                writer = self._writer
                assert writer is not None
                write = writer.write

                def counted_write(data: bytes | bytearray | memoryview) -> None:
                    writes.chunks.append(bytes(data))
                    write(data)

                def counted_writelines(lines: Any) -> None:
                    data = b"".join(lines)
                    writes.chunks.append(data)
                    write(data)

                # Instance attributes shadow the methods for this socket only.
                setattr(writer, "write", counted_write)  # noqa: B010
                setattr(writer, "writelines", counted_writelines)  # noqa: B010

        return CountedConnection

    def commands_in(self, since: int = 0) -> list[list[list[str]]]:
        """The commands (names and arguments) each write since the
        `since`-th carried."""
        written = []
        for chunk in self.chunks[since:]:
            reader = hiredis.Reader(encoding="utf-8")
            reader.feed(chunk)
            commands = []
            while (command := reader.gets()) is not False:
                commands.append(command)
            written.append(commands)
        return written


class _Direction:
    """One way through the proxy, and whether it lets data pass."""

    def __init__(self) -> None:
        self.open = True


class _Pump:
    """One connection's bytes going one way."""

    def __init__(self, writer: asyncio.StreamWriter, direction: _Direction) -> None:
        self.writer = writer
        self.direction = direction
        self.pending = bytearray()

    def forward(self) -> None:
        if self.pending:
            self.writer.write(bytes(self.pending))
            self.pending.clear()


class RedisProxy:
    """A TCP proxy on loopback in front of a Redis server.

    `hold_requests()` / `hold_answers()` keep back what clients send, or what
    Redis answers, until `flow()`; when either side of a connection closes
    (Redis killed it, or the client hung up), the proxy closes the other side
    and drops what it held, as a broken connection loses what was in transit.
    """

    def __init__(self, redis_url: str) -> None:
        self._upstream = URL(redis_url)
        self.requests = _Direction()
        self.answers = _Direction()
        self.accepted = 0  # client connections, ever
        self.open_connections = 0
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._pumps: set[_Pump] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def __aenter__(self) -> RedisProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = str(self._upstream.with_port(port))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        # Ending the pumps ends each connection's handler, which closes both sides.
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def hold_requests(self) -> None:
        self.requests.open = False

    def hold_answers(self) -> None:
        self.answers.open = False

    def held_requests(self) -> int:
        """Bytes of requests kept back now (on connections still open)."""
        return sum(len(p.pending) for p in self._pumps if p.direction is self.requests)

    def held_answers(self) -> int:
        return sum(len(p.pending) for p in self._pumps if p.direction is self.answers)

    def corrupt_answers(self, data: bytes) -> None:
        """Put `data` before the answers held on every open connection."""
        for pump in self._pumps:
            if pump.direction is self.answers:
                pump.pending[:0] = data

    async def flow(self) -> None:
        """Let everything through again, what was held first."""
        async with self._changed:
            self.requests.open = self.answers.open = True
            for pump in self._pumps:
                pump.forward()
            self._changed.notify_all()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Until `condition()` holds; it is checked whenever data is held or
        a connection opens or closes."""
        async with self._changed:
            await self._changed.wait_for(condition)

    def owns(self, task: asyncio.Task[Any]) -> bool:
        return task in self._tasks or task in self._handlers

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        upstream_reader, upstream_writer = await asyncio.open_connection(
            self._upstream.host, self._upstream.port)
        pumps = (_Pump(upstream_writer, self.requests), _Pump(client_writer, self.answers))
        async with self._changed:
            self.accepted += 1
            self.open_connections += 1
            self._pumps.update(pumps)
            self._changed.notify_all()
        moving = [self._spawn(self._move(client_reader, pumps[0])),
                  self._spawn(self._move(upstream_reader, pumps[1]))]
        try:
            # Either side closing ends the connection; what was held is lost.
            await asyncio.wait(moving, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in moving:
                task.cancel()
            await asyncio.gather(*moving, return_exceptions=True)
            client_writer.close()
            upstream_writer.close()
            async with self._changed:
                self._pumps.difference_update(pumps)
                self.open_connections -= 1
                self._changed.notify_all()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name="redis-proxy")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _move(self, reader: asyncio.StreamReader, pump: _Pump) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                async with self._changed:
                    pump.pending += data
                    if not pump.direction.open:
                        self._changed.notify_all()
                        continue
                    pump.forward()
                await pump.writer.drain()
