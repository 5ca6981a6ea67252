"""`ApiKeyStore` on Redis, for `RedisAgentStore`.

Keys (prefix `segue` by default):
- `segue:{apikeys}:keys`     hash name -> key JSON (the digest, never the key)
- `segue:{apikeys}:digests`  hash digest -> name

Both share a hash tag, so a key and its digest come and go in one script,
also on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.outreach.ports import ApiKey
from context_store.redis_client import RedisClient, run_redis

# KEYS: keys, digests. ARGV: name, digest, JSON.
_PUT_KEY = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
"""
# KEYS: keys, digests. ARGV: name.
_DROP_KEY = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
redis.call('HDEL', KEYS[2], cjson.decode(raw)['digest'])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""


class RedisApiKeys:
    """The API keys in Redis."""

    def __init__(self, client: RedisClient, key: Callable[..., str]) -> None:
        self.client = client
        self._keys = key("{apikeys}", "keys")
        self._digests = key("{apikeys}", "digests")
        self._put = client.register_script(_PUT_KEY)
        self._drop = client.register_script(_DROP_KEY)

    async def put_api_key(self, key: ApiKey) -> bool:
        done = await run_redis(self._put(keys=[self._keys, self._digests],
                                         args=[key.name, key.digest, key.to_json()]))
        return bool(done)

    async def api_key_by_digest(self, digest: str) -> ApiKey | None:
        name = await run_redis(self.client.hget(self._digests, digest))
        if name is None:
            return None
        raw = await run_redis(self.client.hget(self._keys, name))
        if raw is None:
            return None
        key = ApiKey.from_json(raw)
        return key if key.digest == digest else None

    async def api_keys(self) -> list[ApiKey]:
        raw = await run_redis(self.client.hgetall(self._keys))
        keys = [ApiKey.from_json(value) for value in raw.values()]
        return sorted(keys, key=lambda k: k.name)

    async def drop_api_key(self, name: str) -> bool:
        return bool(await run_redis(self._drop(keys=[self._keys, self._digests], args=[name])))
