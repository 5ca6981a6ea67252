"""API keys: made, checked, listed and revoked. A key is shown once, when it
is made; only its digest is kept."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence

from bot.core.errors import BadInput
from bot.outreach.ports import SCOPES, ApiKey, ApiKeyStore

KEY_PREFIX = "sgk_"
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# A bearer token that could be a key (ours are `sgk_` and 43 more; keys in
# the configuration may be any long random string): anything else is refused unread.
KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> None:
    if not KEY_NAME.match(name):
        raise BadInput("bad_name", "a key's name is 1 to 64 letters, digits, '.', '_' or "
                                   "'-', starting with a letter or digit")


class ApiKeys:
    """The keys of the public API: those in `store`, and `configured` ones
    (the `api_keys` setting), which are kept nowhere else and so end with the
    setting, never brought back by a restart after a revoke."""

    def __init__(self, store: ApiKeyStore, configured: Sequence[ApiKey] = ()) -> None:
        self.store = store
        self.configured = {key.digest: key for key in configured}

    async def add(self, name: str, scope: str = "notify") -> tuple[ApiKey, str]:
        """A new key named `name`: what is kept, and the key itself (shown
        once). Raises BadInput for a bad name or scope, or a name in use."""
        check_name(name)
        if scope not in SCOPES:
            raise BadInput("bad_scope", f"the scope is one of {', '.join(SCOPES)}")
        secret = new_secret()
        key = ApiKey(name=name, scope=scope, digest=digest_of(secret), hint=secret[:8],
                     created_at=time.time())
        if not await self.store.put_api_key(key):
            raise BadInput("name_taken", f"there is already a key named {name!r}")
        return key, secret

    async def verify(self, secret: str) -> ApiKey | None:
        """The key `secret` is, or None (unknown, revoked or malformed)."""
        if not KEY_SHAPE.match(secret):
            return None
        key = self.configured.get(digest_of(secret)) or \
            await self.store.api_key_by_digest(digest_of(secret))
        # Found by digest; compared again in constant time all the same.
        if key is None or not secrets.compare_digest(key.digest, digest_of(secret)):
            return None
        return key

    async def list(self) -> list[ApiKey]:
        return await self.store.api_keys()

    async def revoke(self, name: str) -> bool:
        return await self.store.drop_api_key(name)
