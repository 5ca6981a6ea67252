"""Signed, expiring tokens (web chat sessions, host identities, deep links).

itsdangerous does the HMAC signing and timestamping; this module only names
the purposes, so a token made for one purpose never passes as another.
"""

from __future__ import annotations

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
            raise BadInput(f"{self.purpose}_expired", f"the {self.purpose} token has expired") from exc
        except BadSignature as exc:
            raise BadInput(f"{self.purpose}_invalid", f"the {self.purpose} token is not valid") from exc
