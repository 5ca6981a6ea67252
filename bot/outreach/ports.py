"""What the public API keeps beside the conversations: its keys."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Protocol

# Each scope allows what the ones before it do.
SCOPES = ("read", "notify", "admin")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as kept: never the key itself, only its SHA-256 `digest`
    (a key is 32 random bytes, so a fast hash is as safe as a slow one) and
    `hint`, its first characters, to tell keys apart in a listing."""

    name: str
    scope: str
    digest: str
    hint: str
    created_at: float

    def allows(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ApiKey:
        data = json.loads(raw)
        return cls(name=data["name"], scope=data["scope"], digest=data["digest"],
                   hint=data["hint"], created_at=float(data["created_at"]))


class ApiKeyStore(Protocol):
    """The API keys, by name and by digest."""

    async def put_api_key(self, key: ApiKey) -> bool:
        """Keep `key`; False (and nothing kept) when its name is taken."""
        ...

    async def api_key_by_digest(self, digest: str) -> ApiKey | None: ...

    async def api_keys(self) -> list[ApiKey]:
        """Every key, by name."""
        ...

    async def drop_api_key(self, name: str) -> bool:
        """Revoke the key named `name`; whether there was one."""
        ...
