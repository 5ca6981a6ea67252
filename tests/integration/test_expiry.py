"""What linking and the per-client limits keep in the store runs out within
the windows it is given: on Redis, the TTLs Redis holds; on the memory store,
the expiry itself, on a clock the test moves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.core.engine import Engine
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.ports import ContextStore
from bot.core.rate_limits import (
    HANDOFFS_PER_ADDRESS,
    HANDOFFS_PER_CUSTOMER,
    LINK_CODES_PER_ADDRESS,
    LINK_CODES_PER_CUSTOMER,
    NEW_SESSIONS_PER_ADDRESS,
    Limit,
    RateLimiter,
)
from bot.linking.service import LinkOptions
from context_store import MemoryContextStore, RedisContextStore
from tests.support.engines import linking_engine
from tests.support.policies import EchoMenuPolicy

ADDRESS = "203.0.113.7"
CODE_MINUTES = 10
WRONG_CODES_WINDOW = 900  # seconds
NOT_VALID = "not valid or has expired"
TOO_MANY = "Too many wrong link codes"


class Sent:
    async def send(self, address: Address, outbound: Outbound) -> None:
        return None


class Clock:
    """A store clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisContextStore]:
    store = RedisContextStore.from_url(redis_url)
    yield store
    await store.close()


def link_engine(store: ContextStore) -> Engine:
    options = LinkOptions(secret="expiry-secret", telegram_bot_username="segue_bot")
    engine, _ = linking_engine(store, EchoMenuPolicy(),
                               {c: Sent() for c in ("web", "telegram", "slack")}, options)
    return engine


class Client:
    """One channel identity, writing from `client_address` where the channel knows it."""

    def __init__(self, engine: Engine, channel: str, user: str,
                 client_address: str | None = None) -> None:
        self.engine, self.identity = engine, ChannelIdentity(channel, user)
        self.client_address = client_address
        self.n = 0

    async def say(self, text: str, payload: str | None = None) -> list[Outbound]:
        self.n += 1
        turn = await self.engine.handle(Inbound(
            identity=self.identity, address=Address(self.identity.channel, self.identity.user_id),
            message_id=f"{self.identity.user_id}-{self.n}", text=text, payload=payload,
            client_address=self.client_address,
        ))
        return list(turn.replies)

    async def customer(self) -> str:
        return await self.engine.customer_of(self.identity)


def code_in(replies: list[Outbound]) -> str:
    match = re.search(r"\b([2-9A-Z]{4})-([2-9A-Z]{4})\b", replies[0].text)
    assert match, replies[0].text
    return match[1] + match[2]


def start_token(replies: list[Outbound]) -> str:
    return [link.url for link in replies[0].links if "t.me" in link.url][0].split("start=")[1]


def asks_to_confirm(replies: list[Outbound]) -> bool:
    return [b.payload for b in replies[0].buttons] == ["link_yes", "link_no"]


async def ttl_of(redis_client: aioredis.Redis, key: str) -> int:
    assert await redis_client.exists(key), key
    return int(await redis_client.ttl(key))


async def test_codes_links_and_wrong_code_counts_expire_in_redis(
    redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    engine = link_engine(redis_store)
    owner = Client(engine, "web", "owner", ADDRESS)
    issued = await owner.say("link")
    assert f"Within {CODE_MINUTES} minutes" in issued[0].text
    code, customer = code_in(issued), await owner.customer()
    code_seconds = CODE_MINUTES * 60
    resume = [k async for k in redis_client.scan_iter(match="segue:token:resume:*")]
    assert len(resume) == 1
    for key in (f"segue:token:link:{code}", resume[0], f"segue:token:link-live:{customer}"):
        assert 0 < await ttl_of(redis_client, key) <= code_seconds, key
    for key in (f"segue:counter:rate:codes-cust:{customer}",
                f"segue:counter:rate:codes-addr:{ADDRESS}"):
        assert 0 < await ttl_of(redis_client, key) <= 3600, key

    guesser = Client(engine, "web", "guesser", ADDRESS)
    wrong = "22222222" if code != "22222222" else "33333333"
    for _ in range(3):  # the third wrong code is the first to cost a wait
        assert NOT_VALID in (await guesser.say(f"link {wrong}"))[0].text
    # The address, which may be an office, waits from its tenth wrong code.
    for n in range(7):
        other = Client(engine, "web", f"neighbour-{n}", ADDRESS)
        assert NOT_VALID in (await other.say(f"link {wrong}"))[0].text
    for subject in ("id:web:guesser", f"addr:{ADDRESS}"):
        counted = f"segue:counter:link-wrong:{subject}"
        assert 0 < await ttl_of(redis_client, counted) <= WRONG_CODES_WINDOW
        assert 0 < await ttl_of(redis_client, f"segue:token:link-wait:{subject}") <= 10
    # Nothing linking or the limits wrote is kept beyond an hour.
    for pattern in ("segue:token:*", "segue:counter:*"):
        async for key in redis_client.scan_iter(match=pattern):
            assert 0 < await redis_client.ttl(key) <= 3600, key


@pytest.mark.parametrize(
    ("limit", "window"),
    [(NEW_SESSIONS_PER_ADDRESS, 600), (LINK_CODES_PER_CUSTOMER, 3600),
     (LINK_CODES_PER_ADDRESS, 3600), (HANDOFFS_PER_CUSTOMER, 3600),
     (HANDOFFS_PER_ADDRESS, 3600)],
    ids=lambda value: value.name if isinstance(value, Limit) else str(value),
)
async def test_every_limit_counts_in_redis_for_its_window(
    limit: Limit, window: int, redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    limiter = RateLimiter(redis_store)
    for _ in range(limit.count):
        assert await limiter.allow(limit, ADDRESS)
    assert not await limiter.allow(limit, ADDRESS)
    assert 0 < await ttl_of(redis_client, f"segue:counter:rate:{limit.name}:{ADDRESS}") <= window


async def test_a_code_and_its_deep_link_run_out_after_ten_minutes() -> None:
    clock = Clock()
    engine = link_engine(MemoryContextStore(clock=clock))
    owner = Client(engine, "web", "owner")
    issued = await owner.say("link")
    code, token = code_in(issued), start_token(issued)
    clock.now += CODE_MINUTES * 60 - 1
    early = Client(engine, "slack", "T:U")
    assert asks_to_confirm(await early.say(f"link {code}"))
    assert (await early.say("no", payload="link_no"))[0].text == "OK, nothing was linked."
    clock.now += 2
    assert NOT_VALID in (await Client(engine, "slack", "T:V").say(f"link {code}"))[0].text
    late = Client(engine, "telegram", "9")
    assert "expired or has been used" in (await late.say(f"/start {token}"))[0].text
    assert await late.customer() != await owner.customer()


async def test_wrong_code_waits_and_counts_run_out() -> None:
    clock = Clock()
    engine = link_engine(MemoryContextStore(clock=clock))
    owner = Client(engine, "web", "owner")
    guesser = Client(engine, "web", "guesser", ADDRESS)
    code = code_in(await owner.say("link"))
    wrong = "22222222" if code != "22222222" else "33333333"
    for _ in range(3):
        assert NOT_VALID in (await guesser.say(f"link {wrong}"))[0].text
    assert TOO_MANY in (await guesser.say(f"link {code}"))[0].text
    clock.now += 11  # the first wait is ten seconds
    assert asks_to_confirm(await guesser.say(f"link {code}"))
    await guesser.say("no", payload="link_no")
    # Once the window is over, earlier wrong codes no longer count: two more
    # leave the guesser under the three free ones.
    clock.now += WRONG_CODES_WINDOW
    code = code_in(await owner.say("link"))
    for _ in range(2):
        assert NOT_VALID in (await guesser.say(f"link {wrong}"))[0].text
    assert asks_to_confirm(await guesser.say(f"link {code}"))


async def test_the_link_code_limit_runs_out_after_an_hour() -> None:
    clock = Clock()
    engine = link_engine(MemoryContextStore(clock=clock))
    owner = Client(engine, "web", "owner")
    for _ in range(LINK_CODES_PER_CUSTOMER.count):
        code_in(await owner.say("link"))
    assert "several link codes" in (await owner.say("link"))[0].text
    clock.now += 3600 - 1
    assert "several link codes" in (await owner.say("link"))[0].text
    clock.now += 2
    code_in(await owner.say("link"))
