"""`ApiKeyStore` in process memory, for the embedded store."""

from __future__ import annotations

from bot.outreach.ports import ApiKey


class MemoryApiKeysMixin:
    """The API keys of `MemoryAgentStore`."""

    _api_keys_by_name: dict[str, ApiKey]

    def _api_key_table(self) -> dict[str, ApiKey]:
        if not hasattr(self, "_api_keys_by_name"):
            self._api_keys_by_name = {}
        return self._api_keys_by_name

    async def put_api_key(self, key: ApiKey) -> bool:
        table = self._api_key_table()
        if key.name in table:
            return False
        table[key.name] = key
        return True

    async def api_key_by_digest(self, digest: str) -> ApiKey | None:
        return next((k for k in self._api_key_table().values() if k.digest == digest), None)

    async def api_keys(self) -> list[ApiKey]:
        table = self._api_key_table()
        return [table[name] for name in sorted(table)]

    async def drop_api_key(self, name: str) -> bool:
        return self._api_key_table().pop(name, None) is not None
