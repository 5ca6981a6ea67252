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
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
import unicodedata
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


# Host identity tokens: `<user id>.<expiry>.<hex HMAC>`, or with claims about
# the user `<user id>.<expiry>.p1_<base64url JSON>.<hex HMAC>`, the HMAC then
# over all but itself. An expiry is digits only, so a part before the HMAC
# that starts with the prefix is claims, whatever dots the user id holds.
CLAIMS_PREFIX = "p1_"
MAX_USER_ID = 256
MAX_NAME = 200
MAX_EMAIL = 254
# Room for the longest name and address, each character escaped, in base64.
MAX_CLAIMS = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# Plausible, not RFC 5321: one @, something on each side, a dot in the domain,
# no spaces; whether it is the user's own address is the host's word.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """A host-signed identity: the user id, and the name and e-mail address
    the host gave, if it gave them."""

    user_id: str
    name: str | None = None
    email: str | None = None


def sign_host_identity(user_id: str, secret: str, *, expires_at: int,
                       name: str | None = None, email: str | None = None) -> str:
    """What a site embedding the widget computes on its server for a signed-in
    user: `<user id>.<expiry, Unix seconds>.<hex HMAC-SHA256 of the two>`, or,
    with a name or an e-mail address, `<user id>.<expiry>.p1_<base64url of
    the JSON {"name", "email"}>.<hex HMAC-SHA256 of the three>`."""
    message = f"{user_id}.{expires_at}"
    claims = {k: v for k, v in (("name", name), ("email", email)) if v is not None}
    if claims:
        encoded = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
        message += "." + CLAIMS_PREFIX + base64.urlsafe_b64encode(encoded).decode().rstrip("=")
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{message}.{digest}"


def _invalid() -> BadInput:
    return BadInput("identity_invalid", "the identity token is not valid")


def read_host_identity(token: str, secret: str, *, now: float | None = None,
                       allow_expired: bool = False) -> HostIdentity:
    """The user id and claims of a host-signed identity token, or `BadInput`;
    with `allow_expired`, a well-signed token whose time has passed counts too."""
    message, _, digest = token.rpartition(".")
    head, _, claims = message.rpartition(".")
    if not claims.startswith(CLAIMS_PREFIX):
        head, claims = message, ""
    user_id, _, expires = head.rpartition(".")
    # Unix seconds fit in 12 digits for 30,000 years; longer is not a time
    # (and Python refuses to parse numbers of over 4,300 digits).
    if not user_id or not expires.isascii() or not expires.isdigit() or len(expires) > 12 \
            or len(user_id) > MAX_USER_ID or len(claims) > MAX_CLAIMS:
        raise _invalid()
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    # Bytes: the user id may be any Unicode (an e-mail address with an
    # accent), and compare_digest takes only ASCII strings.
    if not hmac.compare_digest(expected.encode(), digest.encode()):
        raise _invalid()
    # Read once signed: the claims are the host's, however odd.
    identity = _with_claims(user_id, claims[len(CLAIMS_PREFIX):]) if claims \
        else HostIdentity(user_id)
    if not allow_expired and int(expires) < (time.time() if now is None else now):
        raise BadInput("identity_expired", "the identity token has expired")
    return identity


def _with_claims(user_id: str, encoded: str) -> HostIdentity:
    if not _BASE64URL.fullmatch(encoded):
        raise _invalid()
    unpadded = encoded.rstrip("=")
    try:
        data = json.loads(base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise _invalid() from exc
    if not isinstance(data, dict):
        raise _invalid()
    # Other keys are left for later versions to give a meaning.
    name, email = data.get("name"), data.get("email")
    if name is not None and not (isinstance(name, str) and _plausible(name, MAX_NAME)):
        raise _invalid()
    if email is not None and not (isinstance(email, str) and _plausible(email, MAX_EMAIL)
                                  and _EMAIL.fullmatch(email)):
        raise _invalid()
    return HostIdentity(user_id, name, email)


def _plausible(value: str, limit: int) -> bool:
    """Some text, not too long, with no control characters (a line break in
    a name would forge lines wherever it is shown)."""
    return bool(value.strip()) and len(value) <= limit \
        and not any(unicodedata.category(c) == "Cc" for c in value)


def verify_host_identity(token: str, secret: str, *, now: float | None = None,
                         allow_expired: bool = False) -> str:
    """The user id of a host-signed identity token, or `BadInput`; with
    `allow_expired`, a well-signed token whose time has passed counts too."""
    return read_host_identity(token, secret, now=now, allow_expired=allow_expired).user_id


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
