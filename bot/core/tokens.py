"""Signed, expiring tokens (web chat sessions, host identities, deep links).

itsdangerous does the HMAC signing and timestamping; this module only names
the purposes, so a token made for one purpose never passes as another: each
purpose signs with its own key derived from the server's secret (itsdangerous
derives one per salt; deep links put the purpose in the signed message).
Host identities are the exception: they are signed by the host site with the
one key it is given, which signs nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bot.core.errors import BadInput


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


def derived_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose only, from the server's secret."""
    return hmac.new(secret.encode(), f"segue.key:{purpose}".encode(), hashlib.sha256).digest()


def sign_host_identity(user_id: str, secret: str, *, expires_at: int) -> str:
    """What a site embedding the widget computes on its server for a signed-in
    user: `<user id>.<expiry, Unix seconds>.<hex HMAC-SHA256 of the two>`."""
    message = f"{user_id}.{expires_at}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{message}.{digest}"


def verify_host_identity(token: str, secret: str, *, now: float | None = None,
                         allow_expired: bool = False) -> str:
    """The user id of a host-signed identity token, or `BadInput`; with
    `allow_expired`, a well-signed token whose time has passed counts too."""
    user_id, _, rest = token.rpartition(".")
    user_id, _, expires = user_id.rpartition(".")
    # Unix seconds fit in 12 digits for 30,000 years; longer is not a time
    # (and Python refuses to parse numbers of over 4,300 digits).
    if not user_id or not expires.isascii() or not expires.isdigit() or len(expires) > 12 \
            or len(user_id) > 256:
        raise BadInput("identity_invalid", "the identity token is not valid")
    expected = sign_host_identity(user_id, secret, expires_at=int(expires))
    # Bytes: the user id may be any Unicode (an e-mail address with an
    # accent), and compare_digest takes only ASCII strings.
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise BadInput("identity_invalid", "the identity token is not valid")
    if not allow_expired and int(expires) < (time.time() if now is None else now):
        raise BadInput("identity_expired", "the identity token has expired")
    return user_id


@dataclass(frozen=True, slots=True)
class ShortToken:
    """A random id with its HMAC: 38 characters of `[A-Za-z0-9_-]`, short
    enough for Telegram's `start` parameter (64 at most). It proves only that
    Segue made it; what it stands for, and its expiry, live in the store."""

    secret: str
    purpose: str
    NONCE_LENGTH: ClassVar[int] = 16

    def new(self) -> tuple[str, str]:
        """(token, nonce): give out the token, store under the nonce."""
        nonce = secrets.token_urlsafe(12)
        return nonce + self._mac(nonce), nonce

    def nonce_of(self, token: str) -> str:
        nonce, mac = token[: self.NONCE_LENGTH], token[self.NONCE_LENGTH :]
        if len(token) != 38 or not token.isascii() \
                or not hmac.compare_digest(mac, self._mac(nonce)):
            raise BadInput(f"{self.purpose}_invalid", f"the {self.purpose} token is not valid")
        return nonce

    def _mac(self, nonce: str) -> str:
        message = f"segue.{self.purpose}:{nonce}".encode()
        digest = hmac.new(derived_key(self.secret, self.purpose), message,
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:22]
