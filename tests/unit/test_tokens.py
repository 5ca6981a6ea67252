"""Signed tokens: session tokens, host identities and deep-link tokens, each
refused with its own error code and a message, and only for its purpose."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from bot.core.errors import BadInput
from bot.core.tokens import (
    ShortToken,
    TokenSigner,
    derived_key,
    sign_host_identity,
    verify_host_identity,
)

SECRET = "host-secret"
LATER = int(time.time()) + 3600


def refusal(call: object, *args: object, **kwargs: object) -> BadInput:
    with pytest.raises(BadInput) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def forged(user_id: str, expires: str) -> str:
    """A token signed with the right key, whatever its fields hold."""
    message = f"{user_id}.{expires}"
    return f"{message}.{hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()}"


def test_an_expired_session_token_is_refused_with_a_message() -> None:
    signer = TokenSigner("server-secret", "session")
    token = signer.sign({"s": "abc"})
    assert signer.verify(token, max_age_seconds=60) == {"s": "abc"}
    expired = refusal(signer.verify, token, max_age_seconds=-1)
    assert (expired.code, expired.message) == ("session_expired", "the session token has expired")
    assert str(expired) == "the session token has expired"
    invalid = refusal(signer.verify, token + "x", max_age_seconds=60)
    assert (invalid.code, invalid.message) == ("session_invalid", "the session token is not valid")


def test_each_purpose_has_its_own_key() -> None:
    assert derived_key("k", "resume") != derived_key("k", "session")
    assert derived_key("k", "resume") == hmac.new(b"k", b"segue.key:resume",
                                                  hashlib.sha256).digest()


def test_a_deep_link_token_is_its_nonce_and_the_nonce_mac_under_the_purpose_key() -> None:
    # Fixed, so links given out before a restart or an upgrade still work after it.
    token, nonce = ShortToken("k", "resume").new()
    digest = hmac.new(derived_key("k", "resume"), f"segue.resume:{nonce}".encode(),
                      hashlib.sha256).digest()
    assert token == nonce + base64.urlsafe_b64encode(digest).decode()[:22]
    assert ShortToken("k", "resume").nonce_of(token) == nonce


def test_a_deep_link_token_with_another_nonce_is_refused() -> None:
    short = ShortToken("k", "resume")
    token, nonce = short.new()
    other, _ = short.new()
    swapped = other[:16] + token[16:]
    refused = refusal(short.nonce_of, swapped)
    assert (refused.code, refused.message) == ("resume_invalid", "the resume token is not valid")
    assert refusal(ShortToken("other", "resume").nonce_of, token).code == "resume_invalid"


def test_a_host_identity_is_accepted_until_its_expiry_second() -> None:
    token = sign_host_identity("dana@example.com", SECRET, expires_at=2_000_000_000)
    assert verify_host_identity(token, SECRET, now=2_000_000_000) == "dana@example.com"
    expired = refusal(verify_host_identity, token, SECRET, now=2_000_000_001)
    assert (expired.code, expired.message) == ("identity_expired",
                                                "the identity token has expired")
    # `now` is the clock it is checked against, not the wall clock.
    past = sign_host_identity("dana", SECRET, expires_at=1_000)
    assert verify_host_identity(past, SECRET, now=999) == "dana"
    assert refusal(verify_host_identity, forged("dana", str(LATER)), SECRET,
                   now=LATER + 1).code == "identity_expired"


def test_a_host_identity_expiry_has_at_most_twelve_ascii_digits() -> None:
    twelve = "9" * 12
    assert verify_host_identity(forged("dana", twelve), SECRET) == "dana"
    too_long = refusal(verify_host_identity, forged("dana", "1" + twelve), SECRET)
    assert (too_long.code, too_long.message) == ("identity_invalid",
                                                 "the identity token is not valid")
    # Digits of another script are digits to Python, but not to the protocol.
    arabic = "".join(chr(0x0660 + int(d)) for d in str(LATER))
    assert arabic.isdigit() and int(arabic) == LATER
    assert refusal(verify_host_identity, forged("dana", arabic), SECRET).code == \
        "identity_invalid"


def test_a_host_user_id_has_one_to_256_characters() -> None:
    assert verify_host_identity(forged("é" * 256, str(LATER)), SECRET) == "é" * 256
    for user_id in ("", "é" * 257):
        refused = refusal(verify_host_identity, forged(user_id, str(LATER)), SECRET)
        assert (refused.code, refused.message) == ("identity_invalid",
                                                   "the identity token is not valid")


def test_a_host_identity_signed_with_another_key_is_refused_with_a_message() -> None:
    token = sign_host_identity("dana", "another key", expires_at=LATER)
    refused = refusal(verify_host_identity, token, SECRET)
    assert (refused.code, refused.message) == ("identity_invalid",
                                               "the identity token is not valid")
