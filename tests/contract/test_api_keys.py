"""The contract of `ApiKeyStore` on every agent store (in memory, on one
Redis, on a Redis Cluster), and of the context stores' `find_customer`."""

from __future__ import annotations

from typing import ClassVar

import pytest

from bot.core.model import ChannelIdentity
from bot.core.ports import ContextStore
from bot.handoff.ports import AgentStore
from bot.outreach.keys import ApiKeys
from bot.outreach.ports import ApiKey, ApiKeyStore


@pytest.fixture
def keys(agents: AgentStore) -> ApiKeyStore:
    """The agent store (`agents`, tests/contract/conftest.py), as its API key slice."""
    return agents  # type: ignore[return-value]


def key(name: str, digest: str, scope: str = "notify") -> ApiKey:
    return ApiKey(name=name, scope=scope, digest=digest, hint="sgk_abcd", created_at=1.5)


class TestApiKeyStore:
    """`ApiKeyStore`: keys by name and by digest."""

    covers: ClassVar[type] = ApiKeyStore

    async def test_keys_are_kept_found_by_digest_listed_by_name_and_dropped(
        self, keys: ApiKeyStore
    ) -> None:
        assert await keys.api_keys() == []
        assert await keys.put_api_key(key("shop", "d1"))
        assert await keys.put_api_key(key("crm", "d2", "read"))
        assert await keys.api_key_by_digest("d1") == key("shop", "d1")
        assert await keys.api_key_by_digest("d3") is None
        assert [k.name for k in await keys.api_keys()] == ["crm", "shop"]
        assert await keys.drop_api_key("shop") is True
        assert await keys.drop_api_key("shop") is False
        assert await keys.api_key_by_digest("d1") is None
        assert await keys.api_keys() == [key("crm", "d2", "read")]

    async def test_a_taken_name_is_refused_and_the_first_key_stays(
        self, keys: ApiKeyStore
    ) -> None:
        assert await keys.put_api_key(key("shop", "d1"))
        assert not await keys.put_api_key(key("shop", "d9", "admin"))
        assert await keys.api_key_by_digest("d9") is None
        assert await keys.api_key_by_digest("d1") == key("shop", "d1")

    async def test_the_service_shows_a_key_once_and_verifies_only_it(
        self, keys: ApiKeyStore
    ) -> None:
        service = ApiKeys(keys)
        made, secret = await service.add("shop", "read")
        assert secret.startswith("sgk_") and secret not in made.to_json()
        assert await service.verify(secret) == made
        assert await service.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
        assert await service.revoke("shop")
        assert await service.verify(secret) is None


class TestFindCustomer:
    async def test_an_identity_is_found_and_an_unknown_one_is_not_created(
        self, store: ContextStore
    ) -> None:
        alice = ChannelIdentity("telegram", "42")
        assert await store.find_customer(alice) is None
        assert await store.find_customer(alice) is None
        customer = await store.resolve_customer(alice, "c-alice")
        assert await store.find_customer(alice) == customer == "c-alice"
        assert await store.find_customer(ChannelIdentity("slack", "42")) is None
