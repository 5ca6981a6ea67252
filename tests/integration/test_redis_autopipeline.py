"""The automatic-pipelining Redis client (`AutoPipelineRedis`) on a real
Redis: every caller gets its own answer, concurrent commands share writes,
errors, cancellations and lost connections stay with their own commands,
blocking and stateful commands keep off the shared connection, and answers
are parsed as redis-py parses them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import hiredis
import pytest
import redis.asyncio as aioredis
from redis._parsers import _AsyncRESP2Parser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError

from context_store.redis_autopipeline import AutoPipelineRedis
from context_store.redis_client import connect, run_scripts
from tests.support.redis_server import free_port, redis_server
from tests.support.redis_wire import RedisProxy, SocketWrites

# Every wait in this module is for an event; this only bounds a wait that a
# broken client would make endless.
BOUND = 5.0


def value(i: int) -> str:
    """Distinct values of one length, so the bytes of their answers are known."""
    return f"value-{i:05d}"


def answer_bytes(*values: str) -> int:
    return sum(len(f"${len(v.encode())}\r\n{v}\r\n") for v in values)


def request_bytes(*commands: tuple[Any, ...]) -> int:
    return sum(len(hiredis.pack_command(c)) for c in commands)


def pipelining(client: object) -> AutoPipelineRedis:
    assert isinstance(client, AutoPipelineRedis)
    return client


NewClient = Callable[..., AutoPipelineRedis]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AutoPipelineRedis]:
    """The client Segue's stores use, as `connect` builds it."""
    built = pipelining(connect(redis_url))
    yield built
    await built.aclose()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[RedisProxy]:
    async with RedisProxy(redis_url) as running:
        yield running


@pytest.fixture
async def new_client() -> AsyncIterator[NewClient]:
    """Builds pipelining clients (decoding answers, as `connect` does), closed
    after the test whatever happens in it."""
    made: list[AutoPipelineRedis] = []

    def build(url: str, **kwargs: Any) -> AutoPipelineRedis:
        made.append(pipelining(AutoPipelineRedis.from_url(url, decode_responses=True, **kwargs)))
        return made[-1]

    yield build
    for client in made:
        await client.aclose()


def call(command: Awaitable[Any]) -> asyncio.Future[Any]:
    """A caller of its own (a task) for one command."""
    return asyncio.ensure_future(command)


async def loop_passes(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# Correctness and batching


@pytest.mark.parametrize("parser", ["hiredis", "python"])
async def test_two_thousand_concurrent_commands_each_get_their_own_answer(
    redis_url: str, redis_client: aioredis.Redis, client: AutoPipelineRedis,
    new_client: NewClient, parser: str
) -> None:
    tasks = 400
    await redis_client.mset({f"pre:{i}": value(i) for i in range(tasks)})
    if parser == "python":
        client = new_client(redis_url, parser_class=_AsyncRESP2Parser)
    tagged_incr = client.register_script(
        "return redis.call('INCRBY', KEYS[1], ARGV[1]) .. ':' .. ARGV[2]")
    assert await tagged_incr(keys=["ctr:warm"], args=[1, "loaded"]) == "1:loaded"

    async def one_task(i: int) -> tuple[int, int]:
        # Five commands at once per task: 2,000 in flight together.
        first: list[Any] = list(await asyncio.gather(
            client.incr("shared"), client.get(f"pre:{i}"), client.set(f"own:{i}", f"mine-{i}"),
            client.hset(f"hash:{i}", mapping={"n": i, "tag": f"t{i}"}),
            tagged_incr(keys=[f"ctr:{i}"], args=[i + 1, f"tag-{i}"])))
        assert first[1:] == [value(i), True, 2, f"{i + 1}:tag-{i}"]
        second: list[Any] = list(await asyncio.gather(
            client.get(f"own:{i}"), client.hgetall(f"hash:{i}"), client.incr("shared"),
            tagged_incr(keys=[f"ctr:{i}"], args=[1, f"again-{i}"])))
        assert second[:2] == [f"mine-{i}", {"n": str(i), "tag": f"t{i}"}]
        assert second[3] == f"{i + 2}:again-{i}"
        return first[0], second[2]

    async with asyncio.timeout(BOUND * 2):
        counts = await asyncio.gather(*(one_task(i) for i in range(tasks)))
    # Each INCR answer went to exactly one caller.
    assert sorted(n for pair in counts for n in pair) == list(range(1, 2 * tasks + 1))
    assert await redis_client.get("shared") == str(2 * tasks)
    assert await redis_client.mget([f"ctr:{i}" for i in range(tasks)]) == [
        str(i + 2) for i in range(tasks)]


async def test_concurrent_commands_share_a_few_writes_and_a_lone_one_goes_out_at_once(
    redis_url: str, new_client: NewClient
) -> None:
    writes = SocketWrites()
    client = new_client(redis_url, connection_class=writes.connection_class())
    assert await client.set("lone", "answer")
    since = len(writes.chunks)
    n = 1000
    async with asyncio.timeout(BOUND):
        answers = await asyncio.gather(*(client.set(f"k:{i}", value(i)) for i in range(n)),
                                       *(client.get(f"k:{i}") for i in range(n)))
    assert answers == [True] * n + [value(i) for i in range(n)]
    batches = writes.commands_in(since)
    assert sum(len(b) for b in batches) == 2 * n  # all on the shared connection
    assert len(batches) <= 2 * n // 100, [len(b) for b in batches]
    assert writes.connections == 1

    # Alone, a command is written on the next pass of the event loop, by
    # itself: nothing waits for a batch to fill or for a timer.
    since = len(writes.chunks)
    lone = call(client.get("lone"))
    for _ in range(5):
        if len(writes.chunks) > since:
            break
        await asyncio.sleep(0)
    assert writes.commands_in(since) == [[["GET", "lone"]]]
    assert await asyncio.wait_for(lone, BOUND) == "answer"


async def raised(command: Awaitable[Any]) -> str:
    """The error reply `command` raised."""
    with pytest.raises(ResponseError) as error:
        await command
    return str(error.value)


async def test_an_error_reply_is_its_callers_alone_and_the_connection_carries_on(
    redis_url: str, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    writes = SocketWrites()
    client = new_client(redis_url, connection_class=writes.connection_class())
    await redis_client.rpush("list", "item")
    await redis_client.set("num", "5")
    wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value"
    async with asyncio.timeout(BOUND):
        assert await client.ping()
        since = len(writes.chunks)
        results = await asyncio.gather(
            client.get("num"), raised(client.incr("list")), client.incr("num"),
            raised(client.eval("return redis.error_reply('mine alone')", 0)),
            raised(client.hgetall("list")), client.get("num"), client.lrange("list", 0, -1))
        assert len(writes.commands_in(since)) == 1  # one batch
        assert list(results) == ["5", wrongtype, 6, "mine alone", wrongtype, "6", ["item"]]
        # Error replies are answers, not a broken connection: the same one serves on.
        after = await asyncio.gather(client.incr("num"), raised(client.get("list")))
        assert list(after) == [7, wrongtype]
        assert await client.get("num") == "7"
    assert writes.connections == 1


# Cancellation


async def test_cancelled_callers_never_shift_the_answers_of_the_others(
    client: AutoPipelineRedis, redis_client: aioredis.Redis
) -> None:
    """Rounds of GETs of distinct keys overlap; a random part of the callers
    is cancelled after a random number of loop passes: before their command
    is written, while it is in flight, or once it is answered."""
    keys = 300
    await redis_client.mset({f"key:{i}": value(i) for i in range(keys)})
    rng = random.Random(1729)
    answered = cancelled = 0

    async def settle(calls: list[tuple[int, asyncio.Future[Any]]]) -> None:
        nonlocal answered, cancelled
        if calls:
            await asyncio.wait([task for _, task in calls])
        for i, task in calls:
            if task.cancelled():
                cancelled += 1
            else:
                assert task.result() == value(i)
                answered += 1

    previous: list[tuple[int, asyncio.Future[Any]]] = []
    async with asyncio.timeout(BOUND * 2):
        for _ in range(40):
            calls = [(i, call(client.get(f"key:{i}")))
                     for i in rng.sample(range(keys), 100)]
            await loop_passes(rng.randint(0, 6))
            for _, task in previous + calls:
                if rng.random() < 0.3:
                    task.cancel()
            await settle(previous)
            previous = calls
        await settle(previous)
    assert cancelled > 500 and answered > 1500, (cancelled, answered)
    assert await client.mget([f"key:{i}" for i in range(keys)]) == [
        value(i) for i in range(keys)]
    assert await asyncio.gather(*(client.get(f"key:{i}") for i in range(keys))) == [
        value(i) for i in range(keys)]


async def test_answers_in_transit_for_cancelled_callers_are_read_and_dropped(
    proxy: RedisProxy, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    n = 200
    await redis_client.mset({f"key:{i}": value(i) for i in range(n + 50)})
    client = new_client(proxy.url)
    assert await client.ping()
    proxy.hold_answers()
    in_flight = [call(client.get(f"key:{i}")) for i in range(n)]
    async with asyncio.timeout(BOUND):
        # Redis has run every one of them; their answers are on the way.
        await proxy.wait_until(
            lambda: proxy.held_answers() >= answer_bytes(*(value(i) for i in range(n))))
    for task in in_flight[::3]:
        task.cancel()
    # Queued, not yet written, when cancelled: the writer runs after them.
    unsent = [call(client.get(f"key:{i}")) for i in range(n, n + 50)]
    await asyncio.sleep(0)
    for task in unsent[::2]:
        task.cancel()
    later = [call(client.get(f"key:{i}")) for i in reversed(range(n + 50))]
    await proxy.flow()
    async with asyncio.timeout(BOUND):
        await asyncio.wait(in_flight + unsent + later)
    for i, task in enumerate(in_flight + unsent):
        if i % 3 == 0 if i < n else (i - n) % 2 == 0:
            assert task.cancelled()
        else:
            assert task.result() == value(i)
    assert [task.result() for task in later] == [value(i) for i in reversed(range(n + 50))]
    assert await client.get("key:7") == value(7)


# Lost connections


async def test_a_connection_killed_while_idle_is_replaced_for_the_next_command(
    client: AutoPipelineRedis, redis_client: aioredis.Redis
) -> None:
    await redis_client.set("k", "v")
    async with asyncio.timeout(BOUND):
        for _ in range(3):
            assert await client.get("k") == "v"
            assert await redis_client.client_kill_filter(_type="normal") >= 1
            # Written on the dead connection, the command goes once more on a new one.
            assert await client.get("k") == "v"


async def test_commands_in_flight_when_redis_kills_the_connection_are_sent_once_more(
    proxy: RedisProxy, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    n = 100
    await redis_client.mset({f"key:{i}": value(i) for i in range(n)})
    client = new_client(proxy.url)
    assert await client.ping()
    proxy.hold_requests()
    incrs = [call(client.incr("counter")) for _ in range(n)]
    gets = [call(client.get(f"key:{i}")) for i in range(n)]
    sent = request_bytes(*[("INCR", "counter")] * n, *(("GET", f"key:{i}") for i in range(n)))
    async with asyncio.timeout(BOUND):
        await proxy.wait_until(lambda: proxy.held_requests() >= sent)
        assert await redis_client.client_kill_filter(_type="normal") >= 1
        # The client connects again and writes the lost commands there.
        await proxy.wait_until(lambda: proxy.accepted == 2 and proxy.open_connections == 1)
        await proxy.flow()
        answers = await asyncio.gather(*incrs)
        assert sorted(answers) == list(range(1, n + 1))
        assert await asyncio.gather(*gets) == [value(i) for i in range(n)]
    # The held requests never reached Redis: each INCR ran once, on the new connection.
    assert await redis_client.get("counter") == str(n)


async def test_a_command_lost_twice_fails_with_a_connection_error_and_the_next_one_works(
    proxy: RedisProxy, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    await redis_client.set("k", "v")
    # RESP2 and no client info: a connection sends nothing of its own when it
    # opens, so the held second connection holds only the commands sent again.
    client = new_client(proxy.url, protocol=2, driver_info=None)
    assert await client.ping()
    proxy.hold_requests()
    calls = [call(client.get("k")) for _ in range(20)]
    sent = request_bytes(*[("GET", "k")] * 20)
    async with asyncio.timeout(BOUND):
        for connection in (1, 2):
            await proxy.wait_until(lambda: proxy.accepted == connection  # noqa: B023
                                   and proxy.held_requests() >= sent)
            assert await redis_client.client_kill_filter(_type="normal") >= 1
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    await proxy.flow()
    assert await asyncio.wait_for(client.get("k"), BOUND) == "v"


async def test_an_answer_that_cannot_be_read_fails_the_commands_in_flight_once(
    proxy: RedisProxy, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    """Bytes that are no Redis reply reach the client before the answers:
    the commands in flight fail (sent again they would meet the same), none
    runs twice, and the next command goes on a new connection."""
    client = new_client(proxy.url)
    assert await client.ping()
    proxy.hold_answers()
    calls = [call(client.incr("counter")) for _ in range(10)]
    async with asyncio.timeout(BOUND):
        await proxy.wait_until(
            lambda: proxy.held_answers() >= sum(len(f":{n}\r\n") for n in range(1, 11)))
        proxy.corrupt_answers(b"?not a reply\r\n")
        await proxy.flow()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, InvalidResponse) for r in results), results
        assert await client.incr("counter") == 11
    assert proxy.accepted == 2


async def test_connections_killed_under_load_never_give_a_caller_a_wrong_answer(
    client: AutoPipelineRedis, redis_client: aioredis.Redis
) -> None:
    keys = 200
    await redis_client.mset({f"key:{i}": value(i) for i in range(keys)})
    rounds_done = 0
    progressed = asyncio.Event()
    failures: list[BaseException] = []

    async def reader(worker: int) -> None:
        nonlocal rounds_done
        mine = range(worker * 10, worker * 10 + 10)
        for _ in range(30):
            results = await asyncio.gather(*(client.get(f"key:{i}") for i in mine),
                                           return_exceptions=True)
            for i, result in zip(mine, results, strict=True):
                if isinstance(result, BaseException):
                    failures.append(result)
                else:
                    assert result == value(i)
            rounds_done += 1
            progressed.set()

    kills = 0

    async def killer() -> None:
        nonlocal kills
        while kills < 10:
            target = rounds_done + 20
            while rounds_done < target and rounds_done < 20 * 30:
                progressed.clear()
                await progressed.wait()
            if rounds_done >= 20 * 30:
                return
            kills += 1 if await redis_client.client_kill_filter(_type="normal") else 0

    async with asyncio.timeout(BOUND * 2):
        await asyncio.gather(killer(), *(reader(w) for w in range(keys // 10)))
    assert kills >= 5
    # What fails, fails as a lost connection, never as someone else's answer.
    assert all(isinstance(f, RedisConnectionError) for f in failures), failures[:3]
    assert await asyncio.gather(*(client.get(f"key:{i}") for i in range(keys))) == [
        value(i) for i in range(keys)]


async def test_while_redis_is_down_commands_fail_fast_and_work_again_once_it_is_back() -> None:
    port = free_port()
    server = contextlib.ExitStack()
    url = server.enter_context(redis_server(port))
    client = pipelining(connect(url))
    echo = client.register_script("return ARGV[1]")
    try:
        async with asyncio.timeout(BOUND * 2):
            assert await client.set("k", "v")
            assert await echo(args=["up"]) == "up"
            in_flight = [call(client.get("k")) for _ in range(100)]
            await asyncio.to_thread(server.close)  # Redis stops with commands in flight
            for result in await asyncio.gather(*in_flight, return_exceptions=True):
                assert result == "v" or isinstance(result, RedisConnectionError), result
            for _ in range(3):
                started = time.monotonic()
                results = await asyncio.gather(*(client.get("k") for _ in range(10)),
                                               return_exceptions=True)
                assert all(isinstance(r, RedisConnectionError) for r in results), results
                assert time.monotonic() - started < 2.5
            with redis_server(port):
                # The same client, not rebuilt; Redis came back empty.
                assert await client.get("k") is None
                assert await client.set("k", "back")
                assert await client.get("k") == "back"
                assert await echo(args=["again"]) == "again"
    finally:
        server.close()
        await client.aclose()


# Scripts


async def test_a_flushed_script_is_loaded_again_also_by_calls_sharing_one_batch(
    client: AutoPipelineRedis, redis_client: aioredis.Redis
) -> None:
    async with asyncio.timeout(BOUND):
        counted = client.register_script("return redis.call('INCR', KEYS[1])")
        assert await counted(keys=["runs"]) == 1
        await redis_client.script_flush()
        assert await counted(keys=["runs"]) == 2
        await redis_client.script_flush()
        answers = await asyncio.gather(*(counted(keys=["runs"]) for _ in range(50)))
        # Refused with NOSCRIPT, a call has not run: each ran once, after the load.
        assert sorted(answers) == list(range(3, 53))
        assert await redis_client.get("runs") == "52"
        # redis-py's lock runs its own registered scripts.
        await redis_client.script_flush()
        lock = client.lock("a-lock", timeout=5)
        assert await lock.acquire(blocking=False)
        assert await lock.extend(5)
        await lock.release()
        assert await redis_client.exists("a-lock") == 0


async def test_scripts_run_together_are_one_command_and_answer_in_order(
    redis_url: str, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    """`run_scripts`, as the stores call it, on scripts Redis has forgotten:
    on a single Redis one script runs them all, each with its own keys and
    arguments."""
    writes = SocketWrites()
    client = new_client(redis_url, connection_class=writes.connection_class())
    incr = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    tagged = client.register_script("return KEYS[1] .. '=' .. ARGV[1]")
    assert await client.ping()
    await redis_client.script_flush()
    since = len(writes.chunks)
    async with asyncio.timeout(BOUND):
        answers = await run_scripts(client, (incr, ["n"], [5]), (tagged, ["a"], ["b"]),
                                    (incr, ["m"], [2]), (tagged, ["c"], ["d"]))
    assert answers == [5, "a=b", 2, "c=d"]
    commands = [command[0] for batch in writes.commands_in(since) for command in batch]
    assert commands.count("EVALSHA") <= 2 and "EVAL" not in commands, commands  # NOSCRIPT once
    assert await redis_client.mget(["n", "m"]) == ["5", "2"]
    again = await run_scripts(client, (incr, ["n"], [1]), (tagged, ["x", "y"], ["z", "w"]))
    assert again == [6, "x=z"]


# Blocking and stateful commands


async def blocked_clients(plain: aioredis.Redis) -> int:
    return int((await plain.info("clients"))["blocked_clients"])


async def redis_blocks_one_more_client(plain: aioredis.Redis, before: int) -> None:
    """Until Redis holds one more client in a blocking command than `before`
    (it tells of no event: it is asked again)."""
    while await blocked_clients(plain) <= before:
        await asyncio.sleep(0.01)


BLOCKING: dict[str, Callable[[AutoPipelineRedis], Awaitable[Any]]] = {
    "xread": lambda c: c.xread({"stream": "$"}, block=2000),
    "xreadgroup": lambda c: c.xreadgroup("group", "me", {"stream": ">"}, block=2000),
    "blpop": lambda c: c.blpop(["queue"], timeout=2),
}


@pytest.mark.parametrize("command", list(BLOCKING))
async def test_a_blocked_command_does_not_hold_up_the_shared_connection(
    client: AutoPipelineRedis, redis_client: aioredis.Redis, command: str
) -> None:
    await redis_client.xgroup_create("stream", "group", id="$", mkstream=True)
    await redis_client.mset({f"key:{i}": value(i) for i in range(100)})
    async with asyncio.timeout(BOUND):
        before = await blocked_clients(redis_client)
        blocked = call(BLOCKING[command](client))
        await redis_blocks_one_more_client(redis_client, before)
        for _ in range(3):
            answers = await asyncio.gather(*(client.get(f"key:{i}") for i in range(100)))
            assert answers == [value(i) for i in range(100)]
        assert await client.set("other", "answered")
        # All answered while the blocked command still waits.
        assert not blocked.done()
        if command == "blpop":
            await redis_client.rpush("queue", "item")
            assert list(await blocked) == ["queue", "item"]
        else:
            await redis_client.xadd("stream", {"field": "item"}, id="1-1")
            assert await blocked == [["stream", [("1-1", {"field": "item"})]]]


async def test_pipelines_transactions_and_pubsub_work_beside_the_shared_connection(
    client: AutoPipelineRedis, redis_client: aioredis.Redis
) -> None:
    await redis_client.mset({f"key:{i}": value(i) for i in range(300)})
    echo = client.register_script("return {KEYS[1], ARGV[1]}")
    await redis_client.script_flush()
    attempts = 0

    async def bump_watched(pipe: Any) -> None:
        nonlocal attempts
        attempts += 1
        current = await pipe.get("watched")
        if attempts == 1:  # someone else writes between WATCH and EXEC
            await redis_client.set("watched", "changed")
        pipe.multi()
        pipe.set("watched", f"{current}+1")

    async def pipelines() -> None:
        async with client.pipeline(transaction=True) as pipe:
            for queue in (pipe.incr("n"), pipe.incr("n"), pipe.hset("h", "f", "v"),
                          pipe.hgetall("h"), pipe.get("key:1")):
                assert queue is pipe
            assert await pipe.execute() == [1, 2, 1, {"f": "v"}, value(1)]
        async with client.pipeline(transaction=False) as pipe:
            await echo(keys=["k"], args=["in a pipeline"], client=pipe)
            pipe.get("key:2")
            assert await pipe.execute() == [["k", "in a pipeline"], value(2)]
        await redis_client.set("watched", "start")
        await client.transaction(bump_watched, "watched")
        assert attempts == 2
        assert await redis_client.get("watched") == "changed+1"

    async def pubsub() -> None:
        async with client.pubsub() as subscriber:
            await subscriber.subscribe("news")
            subscribed = await subscriber.get_message(timeout=BOUND)
            assert subscribed is not None and subscribed["type"] == "subscribe"
            assert await client.publish("news", "hello") == 1
            message = await subscriber.get_message(ignore_subscribe_messages=True,
                                                   timeout=BOUND)
            assert message is not None and message["data"] == "hello"

    async with asyncio.timeout(BOUND):
        results = await asyncio.gather(
            pipelines(), pubsub(), *(client.get(f"key:{i}") for i in range(300)))
    assert results[2:] == [value(i) for i in range(300)]


# Answers parsed as redis-py parses them

# Writes, then reads; each is run on the pipelining client and on redis-py's
# own, on the same data.
WRITES: list[Callable[[aioredis.Redis], Awaitable[Any]]] = [
    lambda r: r.set("str", "one"),
    lambda r: r.set("str", "two", get=True),
    lambda r: r.set("str", "three", nx=True),
    lambda r: r.incrbyfloat("float", 1.5),
    lambda r: r.hset("hash", mapping={"a": "1", "b": "2"}),
    lambda r: r.hincrbyfloat("hash", "a", 0.5),
    lambda r: r.sadd("set", "x", "y"),
    lambda r: r.zadd("zset", {"a": 1, "b": 2.5}),
    lambda r: r.zadd("zset", {"a": 2}, incr=True),
    lambda r: r.rpush("list", "l1", "l2"),
    lambda r: r.expire("str", 100),
    lambda r: r.xadd("stream", {"f": "v"}, id="1-1"),
    lambda r: r.xgroup_create("stream", "g", id="0"),
    lambda r: r.geoadd("geo", (13.361389, 38.115556, "palermo")),
    lambda r: r.delete("nothing", "list"),
    lambda r: r.rpush("list", "l3"),
]
READS: list[Callable[[aioredis.Redis], Awaitable[Any]]] = [
    lambda r: r.get("str"),
    lambda r: r.get("missing"),
    lambda r: r.exists("str", "missing", "hash"),
    lambda r: r.hgetall("hash"),
    lambda r: r.hgetall("missing"),
    lambda r: r.hmget("hash", ["a", "missing"]),
    lambda r: r.smembers("set"),
    lambda r: r.sismember("set", "x"),
    lambda r: r.zrange("zset", 0, -1, withscores=True),
    lambda r: r.zrange("zset", 0, -1, withscores=True, score_cast_func=int),
    lambda r: r.zscore("zset", "b"),
    lambda r: r.zscan("zset", 0, score_cast_func=int),
    lambda r: r.lrange("list", 0, -1),
    lambda r: r.type("hash"),
    lambda r: r.persist("str"),
    lambda r: r.xrange("stream"),
    lambda r: r.xread({"stream": "0"}),
    lambda r: r.xreadgroup("g", "c", {"stream": ">"}),
    lambda r: r.xpending("stream", "g"),
    lambda r: r.geopos("geo", "palermo"),
    lambda r: r.scan(0, match="str", count=1000),
    lambda r: r.mget([]),  # an error reply that redis-py turns into an empty answer
    lambda r: r.ping(),
    lambda r: r.echo("echoed"),
    lambda r: r.eval("return {1, 'two', {3}}", 0),
]


async def test_answers_are_parsed_as_redis_py_parses_them(
    client: AutoPipelineRedis, redis_client: aioredis.Redis
) -> None:
    async with asyncio.timeout(BOUND):
        expected = [await write(redis_client) for write in WRITES]
        expected += [await read(redis_client) for read in READS]
        await redis_client.flushdb()
        got = [await write(client) for write in WRITES]
        # The reads all at once: one batch, each with its own parsing options.
        got += list(await asyncio.gather(*(read(client) for read in READS)))
    assert got == expected
    assert [type(g) for g in got] == [type(e) for e in expected]
    assert got[:3] == [True, "one", None]  # SET, SET GET, SET NX
    reads = got[len(WRITES):]
    assert reads[2] == 2 and isinstance(reads[2], int)  # EXISTS
    assert reads[3] == {"a": "1.5", "b": "2"}  # HGETALL
    assert reads[6] == {"x", "y"}  # SMEMBERS
    assert reads[8] == [("b", 2.5), ("a", 3.0)]  # ZRANGE WITHSCORES
    assert reads[21] == []  # MGET of no keys


# Closing


async def test_closing_fails_pending_commands_and_leaves_no_task_or_socket_behind(
    proxy: RedisProxy, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    await redis_client.mset({f"key:{i}": value(i) for i in range(50)})
    client = new_client(proxy.url)
    assert await client.ping()
    proxy.hold_answers()
    in_flight = [call(client.get(f"key:{i}")) for i in range(50)]
    async with asyncio.timeout(BOUND):
        await proxy.wait_until(
            lambda: proxy.held_answers() >= answer_bytes(*(value(i) for i in range(50))))
        unsent = [call(client.get(f"key:{i}")) for i in range(10)]
        await asyncio.sleep(0)  # queued; the writer has not run yet
        await client.aclose()
        # Once closed, no reader or writer of its is left running: only the
        # callers, to be told.
        callers = [*in_flight, *unsent]
        current = asyncio.current_task()
        assert [t for t in asyncio.all_tasks()
                if t is not current and t not in callers and not proxy.owns(t)] == []
        results = await asyncio.gather(*callers, return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results), results
        await proxy.wait_until(lambda: proxy.open_connections == 0)  # its socket is closed


async def test_connect_builds_the_pipelining_client_for_redis_and_sentinel_urls(
    redis_url: str,
) -> None:
    for url in (redis_url, "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/primary/0"):
        client = connect(url)
        assert isinstance(client, AutoPipelineRedis)
        assert client.connection_pool.connection_kwargs["decode_responses"] is True
        await client.aclose()


# Connection set-up errors, scripts Redis lost, RESP3 push messages,
# single-connection clients


async def test_an_error_setting_up_the_connection_is_raised_to_the_caller(
    redis_url: str,
) -> None:
    """Redis refuses to select database 99 (it has 16): the caller gets the
    refusal, as from redis-py, and does not wait for ever on a writer that
    died of it."""
    client = pipelining(connect(redis_url.rsplit("/", 1)[0] + "/99"))
    try:
        # Redis refuses at once; two seconds is the client's connect timeout.
        async with asyncio.timeout(2):
            (result,) = await asyncio.gather(client.get("k"), return_exceptions=True)
    except TimeoutError:
        pytest.fail("the caller was still waiting after 2 s", pytrace=False)
    finally:
        await client.aclose()
    assert isinstance(result, ResponseError) and "DB index is out of range" in str(result)


async def test_more_concurrent_calls_of_an_unknown_script_than_the_pool_has_connections(
    client: AutoPipelineRedis, redis_client: aioredis.Redis
) -> None:
    """After a Redis restart (or SCRIPT FLUSH) every caller of a script gets
    NOSCRIPT at once. Were each to load it on a connection from redis-py's
    pool (100 connections), the callers past the hundredth would get
    MaxConnectionsError instead of their answer."""
    counted = client.register_script("return redis.call('INCR', KEYS[1])")
    async with asyncio.timeout(BOUND):
        answers = await asyncio.gather(*(counted(keys=["runs"]) for _ in range(300)),
                                       return_exceptions=True)
    assert sorted(a for a in answers if isinstance(a, int)) == list(range(1, 301)), [
        a for a in answers if not isinstance(a, int)][:1]


async def test_a_push_message_on_the_shared_connection_is_not_taken_for_an_answer(
    redis_url: str, redis_client: aioredis.Redis, new_client: NewClient
) -> None:
    """redis-py 8 speaks RESP3, where Redis may send messages of its own
    between answers (invalidations for client-side caching, maintenance
    notifications, which redis-py asks for by default). Such a message is no
    caller's answer: taken for one, it would shift every later answer to the
    caller after its own. Here Redis is asked to send invalidations for every
    key to the shared connection."""
    writes = SocketWrites()
    client = new_client(redis_url, connection_class=writes.connection_class())
    await redis_client.mset({"a": "A", "b": "B"})
    assert await client.get("a") == "A"
    (shared,) = [c for c in await redis_client.client_list()
                 if int(c["id"]) != await redis_client.client_id()]
    tracker = aioredis.Redis.from_url(redis_url, single_connection_client=True)
    try:
        assert await tracker.client_tracking_on(clientid=int(shared["id"]), bcast=True)
        await tracker.set("elsewhere", "changed")  # Redis pushes an invalidation
        assert [await client.get("a"), await client.get("b")] == ["A", "B"]
    finally:
        await tracker.aclose()


async def test_a_single_connection_client_runs_scripts_on_its_connection(
    redis_url: str, new_client: NewClient
) -> None:
    """With `single_connection_client=True` every command goes on the one
    connection, registered scripts too: they see the database a SELECT on
    it chose."""
    client = new_client(redis_url, single_connection_client=True)
    get = client.register_script("return redis.call('GET', KEYS[1])")
    try:
        await client.set("where", "db0")
        await client.select(1)
        await client.set("where", "db1")
        assert await client.get("where") == "db1"
        assert await get(keys=["where"]) == "db1"
    finally:
        await client.flushall()


async def test_a_burst_of_pipelines_past_the_pools_size_waits_for_connections(
    redis_url: str,
) -> None:
    """Pipelines (and blocking reads) use pooled connections: a burst of more
    of them than the pool holds (many web chat hellos at once) waits a moment
    for a connection instead of failing at the pool's cap."""
    client = connect(redis_url)
    pool = client.connection_pool
    assert pool.max_connections == 100

    async def one(i: int) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.zadd(f"burst:{i}", {"worker": i})
            pipe.expire(f"burst:{i}", 60)
            return list(await pipe.execute())

    try:
        async with asyncio.timeout(BOUND):
            answers = await asyncio.gather(*(one(i) for i in range(300)))
        assert answers == [[1, True]] * 300
    finally:
        await client.aclose()
