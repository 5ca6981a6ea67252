"""A redis-py client whose commands, issued by concurrent turns in the same
moment, travel to Redis together.

redis-py sends each command on a connection of its own from the pool and
waits for the answer: about 170-200 µs of Python per command, most of it in
taking and checking a pooled connection, timeouts and bookkeeping, not in
Redis. Here every plain command goes on one long-lived connection: the
commands issued during one pass of the event loop are written in one
`write` (a pipeline), and one reader takes the answers off the socket in
order. Nothing waits for a batch to fill: a lone command is written on the
next pass of the loop, so an idle server answers as fast as before, and a busy
one sends many commands per system call.

Each command stays what it was: a Lua script is as atomic as alone, and a
command's answer or error is its own. Commands whose meaning depends on the
connection (blocking reads, transactions, pub/sub, connection state) go
through redis-py's pool as before, and so do pipelines made with
`pipeline()`.

A command whose connection fails is sent once more on a new connection, as
redis-py's own retry does; the stores' scripts are safe to run twice
(token-checked locks, marks set with NX).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.connection import AbstractConnection
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core import metrics

log = logging.getLogger(__name__)

# Commands that block, change the connection's state, or answer out of turn:
# never on the shared connection.
_OWN_CONNECTION = frozenset({
    "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
    "WAIT", "WAITAOF", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE",
    "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR", "WATCH", "UNWATCH", "MULTI", "EXEC",
    "DISCARD", "SELECT", "AUTH", "HELLO", "RESET", "QUIT", "CLIENT", "SHUTDOWN",
    "SYNC", "PSYNC", "REPLCONF", "DEBUG",
})
_MAY_BLOCK = frozenset({"XREAD", "XREADGROUP"})
_CONNECTION_LOST = (RedisConnectionError, RedisTimeoutError, OSError)
_BATCH_SECONDS = metrics.REDIS_BATCH_SECONDS


@dataclass(slots=True)
class _Command:
    name: str
    packed: bytes
    options: dict[str, Any]
    answer: asyncio.Future[Any]
    tries: int = field(default=0)
    # Set on the last command of a batch only: when the batch was written.
    written_at: float = field(default=0.0)


def _shareable(args: tuple[Any, ...], options: dict[str, Any]) -> bool:
    name = str(args[0]).upper()
    if " " in name or name in _OWN_CONNECTION or NEVER_DECODE in options:
        return False
    if name in _MAY_BLOCK:
        # redis-py spells the option as bytes.
        return not any(a in (b"BLOCK", "BLOCK", b"block", "block") for a in args[1:])
    return True


def _pack(args: tuple[Any, ...]) -> bytes:
    packed: bytes = hiredis.pack_command(args)
    return packed


def _text(script: Any) -> str:
    return script.decode() if isinstance(script, bytes) else str(script)


# Runs each script of `_combined` with its own KEYS and ARGV, cut from the
# call's: ARGV[1] is how many, then each one's key and argument counts.
_RUN_EACH = """
local n = tonumber(ARGV[1])
local k, a = 1, 2 + 2 * n
local answers = {}
for i = 1, n do
  local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local keys, args = {}, {}
  for j = 1, nk do keys[j] = KEYS[k]; k = k + 1 end
  for j = 1, na do args[j] = ARGV[a]; a = a + 1 end
  local answer = each[i](keys, args)
  if answer == nil then answer = false end
  answers[i] = answer
end
return answers
"""


def _combined(texts: tuple[str, ...]) -> str:
    """One script that runs `texts` in order, each as a function whose
    parameters shadow the globals KEYS and ARGV it was written against."""
    bodies = "".join(f"each[{i}] = function(KEYS, ARGV)\n{text}\nend\n"
                     for i, text in enumerate(texts, start=1))
    return "local each = {}\n" + bodies + _RUN_EACH


class SharedScript:
    """A Lua script run by its SHA1 on the shared connection, loaded again if
    Redis no longer knows it (a restart, SCRIPT FLUSH); what redis-py's
    `register_script` gives, without its import and checks on every call."""

    def __init__(self, client: AutoPipelineRedis, script: str | bytes) -> None:
        self.client = client
        self.script = script
        self._in_pipeline = AsyncScript(client, script)
        self.sha: str = self._in_pipeline.sha
        self._loading: asyncio.Future[Any] | None = None

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = (),
                       client: Any = None) -> Any:
        if client is not None and client is not self.client:
            # A pipeline: redis-py's script loads itself before the pipeline runs.
            return await self._in_pipeline(keys=keys, args=args, client=client)
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._load()
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)

    async def _load(self) -> None:
        """One SCRIPT LOAD, on the shared connection, for every caller that
        found the script missing at the same time (after a Redis restart,
        all of them at once)."""
        if self._loading is None or self._loading.done():
            self._loading = asyncio.ensure_future(
                self.client._submit(("SCRIPT", "LOAD", self.script), {}))
        await asyncio.shield(self._loading)


class _Link:
    """The shared connection and the commands written on it, in order."""

    def __init__(self, conn: AbstractConnection) -> None:
        self.conn = conn
        self.sent: collections.deque[_Command] = collections.deque()
        self.reader: asyncio.Task[None] | None = None
        self.lost = False
        # Only a read or write that has to wait arms a timer: redis-py arms
        # one for every read and write.
        self.timeout = conn.socket_timeout or None

    async def send(self, data: bytes) -> None:
        writer = self.conn._writer
        if writer is None:
            raise RedisConnectionError("the connection to Redis is closed")
        writer.write(data)
        if writer.transport.get_write_buffer_size() > 0:  # Redis reads slower than we write
            async with asyncio.timeout(self.timeout):
                await writer.drain()

    async def receive(self) -> Any:
        """The next answer, an error reply as a `ResponseError` value."""
        parser: Any = self.conn._parser
        if not isinstance(parser, _AsyncHiredisParser):
            try:
                return await self.conn.read_response()
            except ResponseError as exc:
                return exc
        reader = parser._reader
        if reader is None:
            raise RedisConnectionError("the connection to Redis is closed")
        response = reader.gets()
        if response is NOT_ENOUGH_DATA:
            try:
                async with asyncio.timeout(self.timeout):
                    while response is NOT_ENOUGH_DATA:
                        await parser.read_from_socket()
                        response = reader.gets()
            except TimeoutError:
                raise RedisTimeoutError("Redis did not answer in time") from None
        if isinstance(response, RedisConnectionError):
            raise response
        push = parser._hiredis_PushNotificationType
        if push is not None and isinstance(response, push):
            # RESP3: a message of Redis's own between answers (an
            # invalidation, a maintenance notice), not an answer to anyone.
            await parser.handle_push_response(response)
            return await self.receive()
        return response


class AutoPipelineRedis(aioredis.Redis):
    """redis-py's asyncio client with automatic pipelining (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: list[_Command] = []
        self._link: _Link | None = None
        self._writer: asyncio.Task[None] | None = None
        self._together: dict[tuple[str, ...], SharedScript] = {}

    def register_script(self, script: str | bytes | memoryview[int]) -> Any:
        if self.single_connection_client:
            return super().register_script(script)
        return SharedScript(self, bytes(script) if isinstance(script, memoryview) else script)

    async def run_together(self, calls: Sequence[tuple[Any, Sequence[Any], Sequence[Any]]]
                           ) -> list[Any]:
        """Several scripts (each `(script, keys, args)`) as one: one command
        instead of one each, on a single Redis where keys of any slot may
        meet in a script. Each runs as alone, with its own KEYS and ARGV;
        together they are atomic. Their answers, in order."""
        texts = tuple(_text(script.script) for script, _, _ in calls)
        together = self._together.get(texts)
        if together is None:
            together = self._together[texts] = SharedScript(self, _combined(texts))
        keys: list[Any] = []
        args: list[Any] = [len(calls)]
        for _, call_keys, call_args in calls:
            args += [len(call_keys), len(call_args)]
        for _, call_keys, call_args in calls:
            keys += call_keys
            args += call_args
        return list(await together(keys=keys, args=args))

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if self.single_connection_client:
            return await self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)
        return await self._submit(("EVALSHA", sha, numkeys, *keys_and_args), {})

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.single_connection_client or not _shareable(args, options):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return await self._submit(args, options)

    def _submit(self, args: tuple[Any, ...], options: dict[str, Any]) -> asyncio.Future[Any]:
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue(_Command(str(args[0]), _pack(args), options, answer))
        return answer

    def _queue(self, command: _Command) -> None:
        self._waiting.append(command)
        if self._writer is None:
            # The writer and reader serve every turn's commands: in a context
            # of their own, their log lines carry no turn that started them.
            self._writer = asyncio.create_task(self._write(), name="redis-autopipeline-write",
                                               context=contextvars.Context())

    async def _write(self) -> None:
        """Send what waits, then what queued meanwhile, until nothing waits."""
        try:
            while self._waiting:
                link = await self._connected()
                if link is None:
                    continue
                batch, self._waiting = self._waiting, []
                # One timing per batch, not per command: its last answer
                # ends the batch's round trip (see `_read`).
                batch[-1].written_at = time.perf_counter()
                # Answers come back in the order of the writes.
                link.sent.extend(batch)
                try:
                    await link.send(b"".join([c.packed for c in batch]))
                except Exception as exc:
                    await self._lost(link, exc)
                    continue
                if link.reader is None:
                    link.reader = asyncio.create_task(self._read(link),
                                                      name="redis-autopipeline-read",
                                                      context=contextvars.Context())
        finally:
            self._writer = None

    async def _connected(self) -> _Link | None:
        if self._link is not None and not self._link.lost:
            return self._link
        try:
            conn = await self.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        except Exception as exc:  # unreachable, or refused at set-up (AUTH, SELECT)
            waiting, self._waiting = self._waiting, []
            self._fail(waiting, exc)
            return None
        self._link = _Link(conn)
        return self._link

    async def _read(self, link: _Link) -> None:
        try:
            while not link.lost:
                if not link.sent:
                    # Idle: park until the writer wakes this reader again.
                    link.reader = None
                    return
                try:
                    response = await link.receive()
                except Exception as exc:  # lost, or a reply that cannot be parsed
                    await self._lost(link, exc)
                    return
                if link.lost:  # the writer found the connection lost meanwhile
                    return
                if isinstance(response, ReadOnlyError):
                    # A master that became a replica (Sentinel failover): the
                    # command goes again to whatever is master now.
                    await self._lost(link, RedisConnectionError(str(response)))
                    return
                command = link.sent.popleft()
                if command.written_at:
                    _BATCH_SECONDS.observe(time.perf_counter() - command.written_at)
                    command.written_at = 0.0
                self._answer(command, response)
        finally:
            if link.reader is asyncio.current_task():
                link.reader = None

    def _answer(self, command: _Command, response: Any) -> None:
        if command.answer.done():  # its caller was cancelled
            return
        options = command.options
        if isinstance(response, ResponseError):
            if EMPTY_RESPONSE in options:
                command.answer.set_result(options[EMPTY_RESPONSE])
            else:
                command.answer.set_exception(response)
            return
        options.pop(EMPTY_RESPONSE, None)
        options.pop("keys", None)
        callback = self.response_callbacks.get(command.name)
        try:
            result = callback(response, **options) if callback else response
        except Exception as exc:  # a reply the callback cannot parse is that command's error
            command.answer.set_exception(exc)
            return
        command.answer.set_result(result)

    async def _lost(self, link: _Link, exc: BaseException) -> None:
        """Every command sent on a lost link and not answered gets one more
        try on a new connection, then the error."""
        if link.lost:
            return
        link.lost = True
        if self._link is link:
            self._link = None
        unanswered = [c for c in link.sent if not c.answer.done()]
        link.sent.clear()
        # Only a lost connection is worth another try; a reply that cannot be
        # parsed would be the same again.
        again = isinstance(exc, _CONNECTION_LOST)
        retried = [c for c in unanswered if again and c.tries == 0]
        self._fail([c for c in unanswered if not again or c.tries > 0], exc)
        try:
            await link.conn.disconnect(nowait=True)
        finally:
            await self.connection_pool.release(link.conn)
        if again:
            # The server went away (a restart, a failover): the idle pooled
            # connections lead to it too, and the retry must not take one.
            await self.connection_pool.disconnect(inuse_connections=False)
        for command in retried:
            command.tries += 1
            command.written_at = 0.0  # timed again as part of the batch it goes in
        if retried:
            log.debug("Redis connection lost (%s); sending %d command(s) again", exc,
                      len(retried))
            self._waiting[:0] = retried
            if self._writer is None:
                self._writer = asyncio.create_task(self._write(),
                                                   name="redis-autopipeline-write",
                                                   context=contextvars.Context())

    @staticmethod
    def _fail(commands: list[_Command], exc: BaseException) -> None:
        for command in commands:
            if not command.answer.done():
                command.answer.set_exception(exc)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        closed = RedisConnectionError("the Redis client was closed")
        waiting, self._waiting = self._waiting, []
        self._fail(waiting, closed)
        link, self._link = self._link, None
        if link is not None:
            link.lost = True
            if link.reader is not None and not link.reader.done():
                link.reader.cancel()
            self._fail(list(link.sent), closed)
            await link.conn.disconnect(nowait=True)
            await self.connection_pool.release(link.conn)
        await super().aclose(close_connection_pool)
