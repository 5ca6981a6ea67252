"""The customer profile's parts: host identity tokens with a name and an
e-mail address (the documented format, old tokens still valid, odd claims
refused), the per-channel profiles kept in the conversation state, and the
merged view an agent reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from bot.core.conversation import ConversationState
from bot.core.errors import BadInput
from bot.core.profile import merged_profile, name_of, profile_of
from bot.core.tokens import (
    HostIdentity,
    read_host_identity,
    sign_host_identity,
    verify_host_identity,
)

SECRET = "host-secret"
LATER = int(time.time()) + 3600


def signed(message: str) -> str:
    """`message` with its HMAC, as docs/protocol.md §1.6 tells a host to make it."""
    return f"{message}.{hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()}"


def with_claims(user_id: str, claims: object, *, raw: str | None = None) -> str:
    """A token carrying `claims` as JSON (or `raw` as the encoded part),
    signed with the right key."""
    encoded = raw if raw is not None else base64.urlsafe_b64encode(
        json.dumps(claims).encode()).decode().rstrip("=")
    return signed(f"{user_id}.{LATER}.p1_{encoded}")


def refused(token: str) -> str:
    with pytest.raises(BadInput) as caught:
        read_host_identity(token, SECRET)
    return caught.value.code


# Tokens


@pytest.mark.parametrize("user_id", ["dana", "dana.reyes@example.com", "a.1.p1_x", "é.1"])
def test_a_token_with_a_name_and_an_address_reads_back(user_id: str) -> None:
    token = sign_host_identity(user_id, SECRET, expires_at=LATER, name="Dana Reyes-Ortíz",
                               email="dana@example.com")
    assert token.count(".") == user_id.count(".") + 3 and ".p1_" in token
    assert read_host_identity(token, SECRET) == HostIdentity(
        user_id, "Dana Reyes-Ortíz", "dana@example.com")
    assert verify_host_identity(token, SECRET) == user_id


def test_the_documented_recipe_makes_a_token_that_reads() -> None:
    claims = base64.urlsafe_b64encode(
        json.dumps({"name": "Dana", "email": "d@example.com"}).encode()).decode()
    # With its padding, as Python's encoder leaves it.
    token = signed(f"u-1.{LATER}.p1_{claims}")
    assert read_host_identity(token, SECRET) == HostIdentity("u-1", "Dana", "d@example.com")
    assert read_host_identity(with_claims("u-1", {"name": "Dana"}), SECRET) == \
        HostIdentity("u-1", "Dana", None)
    # Keys of later versions are left alone.
    assert read_host_identity(with_claims("u-1", {"email": "d@example.com", "tier": 3}),
                              SECRET) == HostIdentity("u-1", None, "d@example.com")


def test_old_tokens_and_tokens_without_claims_still_read() -> None:
    old = signed(f"dana.reyes.{LATER}")
    assert read_host_identity(old, SECRET) == HostIdentity("dana.reyes")
    assert sign_host_identity("dana", SECRET, expires_at=LATER) == signed(f"dana.{LATER}")


def test_claims_are_signed_with_the_rest() -> None:
    token = sign_host_identity("dana", SECRET, expires_at=LATER, name="Dana")
    message, _, digest = token.rpartition(".")
    other = sign_host_identity("dana", SECRET, expires_at=LATER, name="Eve")
    swapped = other.rpartition(".")[0] + "." + digest
    assert refused(swapped) == "identity_invalid"
    # Dropping the claims leaves a signature over something else.
    assert refused(message.rpartition(".")[0] + "." + digest) == "identity_invalid"
    # An expired token with claims says so, as one without does.
    past = sign_host_identity("dana", SECRET, expires_at=1_000, name="Dana")
    assert refused(past) == "identity_expired"
    assert read_host_identity(past, SECRET, allow_expired=True).name == "Dana"


BAD_CLAIMS = {
    "name too long": {"name": "n" * 201},
    "empty name": {"name": " "},
    "name not a string": {"name": ["Dana"]},
    "line break in a name": {"name": "Dana\nAdmin: yes"},
    "address too long": {"email": "d@" + "e" * 249 + ".com"},
    "no @": {"email": "dana.example.com"},
    "no domain dot": {"email": "dana@localhost"},
    "two @": {"email": "a@b@example.com"},
    "space in address": {"email": "dana reyes@example.com"},
    "not an object": ["Dana"],
}


@pytest.mark.parametrize("claims", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
def test_odd_claims_are_refused(claims: object) -> None:
    assert refused(with_claims("dana", claims)) == "identity_invalid"


@pytest.mark.parametrize("raw", ["", "!!!!", "e30.", "a", "bm90IGpzb24", "e30===",
                                 "A" * 4097], ids=repr)
def test_claims_that_are_not_base64_json_are_refused(raw: str) -> None:
    assert refused(with_claims("dana", None, raw=raw)) == "identity_invalid"


def test_the_longest_claims_read() -> None:
    name, email = "ü" * 200, "d" * 240 + "@example.com"
    token = sign_host_identity("dana", SECRET, expires_at=LATER, name=name, email=email)
    assert read_host_identity(token, SECRET) == HostIdentity("dana", name, email)


# Profiles


def test_a_channel_profile_keeps_known_keys_and_real_values() -> None:
    assert profile_of(name=" Dana ", username="", email=None, shoe_size="42",
                      time_zone=3) == {"name": "Dana"}
    assert profile_of(name="") is None
    assert profile_of(name="x" * 300) == {"name": "x" * 256}


def test_the_state_keeps_each_channel_latest_profile() -> None:
    state = ConversationState()
    assert state.note_profile("telegram", {"name": "Dana", "username": "dreyes"})
    assert not state.note_profile("telegram", {"name": "Dana", "username": "dreyes"})
    # Saying nothing leaves what was said.
    assert not state.note_profile("telegram", None)
    assert state.note_profile("web", {"email": "d@example.com"})
    assert state.note_profile("telegram", {"name": "Dana R"})
    again = ConversationState.from_json(state.to_json())
    assert again.profile == {"telegram": {"name": "Dana R"}, "web": {"email": "d@example.com"}}
    assert "profile" not in ConversationState().to_json()
    # A state saved by another version keeps only what makes a profile.
    odd = '{"turns": 1, "dialog": {}, "profile": {"web": {"name": 5, "email": "e@x.io"}, ' \
          '"slack": "x", "telegram": {}}}'
    assert ConversationState.from_json(odd).profile == {"web": {"email": "e@x.io"}}


def test_the_merged_view_prefers_the_web_then_telegram_then_slack() -> None:
    by_channel = {
        "slack": {"name": "Dana R. (Slack)", "time_zone": "Europe/Berlin", "language": "de-DE",
                  "email": "dana@work.example"},
        "telegram": {"name": "Dana Reyes", "username": "dreyes", "language": "en"},
        "web": {"name": "Dana Reyes-Ortiz", "email": "dana@example.com"},
    }
    merged = merged_profile(by_channel)
    assert merged == {"name": "Dana Reyes-Ortiz", "username": "dreyes",
                      "email": "dana@example.com", "language": "en",
                      "time_zone": "Europe/Berlin", "by_channel": by_channel}
    assert list(merged["by_channel"]) == ["web", "telegram", "slack"]
    del by_channel["web"]
    assert name_of(by_channel) == "Dana Reyes"
    assert merged_profile(by_channel)["email"] == "dana@work.example"
    del by_channel["telegram"]
    assert name_of(by_channel) == "Dana R. (Slack)"
    assert name_of({"web": {"email": "d@example.com"}, "other": {"name": "D"}}) == "D"
    assert merged_profile({}) == {"name": None, "username": None, "email": None,
                                  "language": None, "time_zone": None, "by_channel": {}}
