"""`segue apikeys add|list|revoke` on a real Redis, and keys given to
`segue run` in SEGUE_API_KEYS (the embedded store's way), used against the
real app."""

from __future__ import annotations

import asyncio
import secrets

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.assembly.cli import main
from bot.core.errors import ConfigError
from bot.core.settings import Settings, load_settings
from bot.outreach.keys import ApiKeys
from context_store import RedisContextStore
from tests.support.app_server import serve_segue
from tests.support.privacy_rig import Ran
from tests.support.redis_server import free_port


def apikeys(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    status = main(["apikeys", *args])
    out, err = capsys.readouterr()
    return Ran(status, out, err)


async def verified(redis_url: str, secret: str) -> str | None:
    store = RedisContextStore.from_url(redis_url)
    try:
        key = await ApiKeys(store.agent_store()).verify(secret)
        return None if key is None else f"{key.name}:{key.scope}"
    finally:
        await store.close()


async def stored_values(redis_url: str) -> str:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        found = []
        async for name in client.scan_iter("*"):
            found.append(str(await client.hgetall(name)))
        return "\n".join(found)
    finally:
        await client.aclose()


def test_a_key_is_printed_once_listed_without_itself_and_revoked(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    made = apikeys(capsys, "add", "shop", "--scope", "read")
    assert made.status == 0, made.err
    secret = made.out.splitlines()[-1]
    assert secret.startswith("sgk_") and len(secret) == 47
    assert asyncio.run(verified(redis_url, secret)) == "shop:read"
    assert secret not in asyncio.run(stored_values(redis_url))
    assert apikeys(capsys, "add", "crm").status == 0
    listed = apikeys(capsys, "list")
    assert listed.status == 0
    rows = [line.split("\t") for line in listed.out.splitlines()]
    assert [(r[0], r[1], r[2]) for r in rows] == [("crm", "notify", rows[0][2]),
                                                  ("shop", "read", secret[:8] + "…")]
    assert secret not in listed.out
    taken = apikeys(capsys, "add", "shop")
    assert taken.status == 2 and "already a key named 'shop'" in taken.err
    revoked = apikeys(capsys, "revoke", "shop")
    assert (revoked.status, revoked.out) == (0, "API key 'shop' revoked\n")
    assert asyncio.run(verified(redis_url, secret)) is None
    again = apikeys(capsys, "revoke", "shop")
    assert again.status == 2 and "no key named 'shop'" in again.err


def test_bad_names_scopes_and_an_unreachable_redis_are_refused(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    bad = apikeys(capsys, "add", "no spaces")
    assert bad.status == 2 and "name" in bad.err and bad.out == ""
    with pytest.raises(SystemExit) as exited:
        apikeys(capsys, "add", "shop", "--scope", "root")
    assert exited.value.code == 2
    assert apikeys(capsys, "list").out == ""
    monkeypatch.setenv("SEGUE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    down = apikeys(capsys, "add", "shop")
    assert down.status == 3 and "unreachable" in down.err


def test_without_redis_add_prints_the_setting_to_give_segue_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SEGUE_REDIS_URL", raising=False)
    made = apikeys(capsys, "add", "shop", "--scope", "admin")
    assert made.status == 0, made.err
    lines = made.out.splitlines()
    secret = lines[-1]
    assert f"SEGUE_API_KEYS=shop:{secret}:admin" in lines
    for command in (["list"], ["revoke", "shop"]):
        refused = apikeys(capsys, *command)
        assert refused.status == 2 and "SEGUE_API_KEYS" in refused.err


async def test_keys_from_the_configuration_open_the_api_on_the_embedded_store() -> None:
    secret = "sgk_" + secrets.token_urlsafe(32)
    reader = secrets.token_hex(20)
    settings = Settings(webchat_secret="api-keys-tests-web-secret",
                        api_keys=f"shop:{secret},crm:{reader}:read")
    async with serve_segue(settings) as app, aiohttp.ClientSession() as http:
        async def status(key: str, method: str = "GET", path: str = "/customers") -> int:
            async with http.request(method, f"{app.base_url}/api/v1{path}",
                                    params={"channel": "telegram", "user_id": "1"},
                                    json={}, headers={"Authorization": f"Bearer {key}"}) as r:
                return r.status
        assert await status(secret) == 404  # known key: no such customer
        assert await status(reader) == 404
        assert await status(reader, "POST", "/customers/abc/messages") == 403
        assert await status(secret + "x") == 401


def test_a_bad_key_entry_is_refused_without_quoting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sgk_" + secrets.token_urlsafe(32)
    for value, number in ((f"shop:{secret}:root", 1), ("shop:short", 1), (f":{secret}", 1),
                          (f"shop:{secret},x", 2)):
        monkeypatch.setenv("SEGUE_API_KEYS", value)
        with pytest.raises(ConfigError) as refused:
            load_settings()
        said = str(refused.value)
        assert "SEGUE_API_KEYS" in said and f"entry {number} is not" in said, said
        assert secret not in said


def test_a_repeated_key_or_name_in_the_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = "sgk_" + secrets.token_urlsafe(32), "sgk_" + secrets.token_urlsafe(32)
    for value in (f"a:{first}:read,b:{first}:admin", f"c:{first}:read,c:{second}:admin"):
        monkeypatch.setenv("SEGUE_API_KEYS", value)
        with pytest.raises(ConfigError) as refused:
            load_settings()
        said = str(refused.value)
        assert "entry 2 repeats the name or the key" in said and first not in said
