"""Signed, expiring tokens (web chat sessions, host identities, deep links).

itsdangerous does the HMAC signing and timestamping; this module only names
the purposes, so a token made for one purpose never passes as another.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bot.errors import BadInput


@dataclass(frozen=True, slots=True)
class TokenSigner:
    """Signs and checks tokens of one purpose (`salt`) with one secret."""

    secret: str
    purpose: str

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=f"segue.{self.purpose}")

    def sign(self, data: Any) -> str:
        return str(self._serializer().dumps(data))

    def verify(self, token: str, *, max_age_seconds: int) -> Any:
        """The signed data, or `BadInput` (`<purpose>_expired` / `_invalid`)."""
        try:
            return self._serializer().loads(token, max_age=max_age_seconds)
        except SignatureExpired as exc:
            message = f"the {self.purpose} token has expired"
            raise BadInput(f"{self.purpose}_expired", message) from exc
        except BadSignature as exc:
            message = f"the {self.purpose} token is not valid"
            raise BadInput(f"{self.purpose}_invalid", message) from exc


def sign_host_identity(user_id: str, secret: str, *, expires_at: int) -> str:
    """What a site embedding the widget computes on its server for a signed-in
    user: `<user id>.<expiry, Unix seconds>.<hex HMAC-SHA256 of the two>`."""
    message = f"{user_id}.{expires_at}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{message}.{digest}"


def verify_host_identity(token: str, secret: str, *, now: float | None = None) -> str:
    """The user id of a host-signed identity token, or `BadInput`."""
    user_id, _, rest = token.rpartition(".")
    user_id, _, expires = user_id.rpartition(".")
    if not user_id or not expires.isdigit() or len(user_id) > 256:
        raise BadInput("identity_invalid", "the identity token is not valid")
    expected = sign_host_identity(user_id, secret, expires_at=int(expires))
    if not hmac.compare_digest(expected, token):
        raise BadInput("identity_invalid", "the identity token is not valid")
    if int(expires) < (time.time() if now is None else now):
        raise BadInput("identity_expired", "the identity token has expired")
    return user_id
