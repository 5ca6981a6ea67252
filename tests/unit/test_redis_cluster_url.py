"""`redis+cluster://` URLs: what the settings accept and what the store's
connect makes of them, with a clear error for one that is wrong."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from bot.core.settings import Settings, check_settings
from context_store.redis_client import connect
from context_store.redis_cluster import ClusterUrl, parse_cluster_url

GOOD = {
    "redis+cluster://10.0.0.1:7000": ClusterUrl((("10.0.0.1", 7000),)),
    "redis+cluster://a:7000,b:7001,c:7002/": ClusterUrl(
        (("a", 7000), ("b", 7001), ("c", 7002))),
    "redis+cluster://:s3cr%40t@redis-0.redis:6379/0": ClusterUrl(
        (("redis-0.redis", 6379),), None, "s3cr@t"),
    "redis+cluster://segue:pw/with?odd#chars@h:1": ClusterUrl((("h", 1),), "segue",
                                                               "pw/with?odd#chars"),
    "redis+cluster://[::1]:7000,[fd00::2]:7001": ClusterUrl((("::1", 7000), ("fd00::2", 7001))),
}

BAD = {
    "redis+cluster://": "host:port",
    "redis+cluster://h": "host:port",
    "redis+cluster://h:": "host:port",
    "redis+cluster://h:7000,": "host:port",
    "redis+cluster://h:0": "1 to 65535",
    "redis+cluster://h:65536": "1 to 65535",
    "redis+cluster://h:port": "host:port",
    "redis+cluster://h:7000/1": "only database 0",
    "redis+cluster://h:7000?ssl=true": "no query",
}


@pytest.mark.parametrize(("url", "parts"), GOOD.items(), ids=list(GOOD))
def test_a_cluster_url_names_its_nodes_and_password(url: str, parts: ClusterUrl) -> None:
    assert parse_cluster_url(url) == parts
    settings = Settings(redis_url=url)  # type: ignore[arg-type]
    assert settings.redis_url is not None and settings.redis_url.get_secret_value() == url


@pytest.mark.parametrize(("url", "says"), BAD.items(), ids=list(BAD))
def test_a_wrong_cluster_url_is_refused_by_the_settings_and_by_connect(
    url: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", url)
    settings, problems = check_settings(None)
    assert settings is None
    assert str(problems[0]).startswith("environment SEGUE_REDIS_URL:")
    assert says in str(problems[0])
    with pytest.raises(ValueError, match=says):
        connect(url)


def test_the_password_is_never_in_the_error() -> None:
    with pytest.raises(ValueError) as refused:
        parse_cluster_url("redis+cluster://:hunter2@h:99999")
    assert "hunter2" not in str(refused.value)


async def test_connect_makes_a_cluster_client_for_its_nodes_without_connecting() -> None:
    client = connect("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001")
    try:
        assert isinstance(client, RedisCluster)
        assert [(n.host, n.port) for n in client.startup_nodes] == [
            ("127.0.0.1", 7000), ("127.0.0.1", 7001)]
        kwargs = client.get_connection_kwargs()
        assert (kwargs["password"], kwargs["decode_responses"]) == ("pw", True)
        # Down means a quick 503, as on one Redis: one retry, a short connect.
        assert (client.retry.get_retries(), kwargs["socket_connect_timeout"]) == (1, 2)
    finally:
        await client.aclose()
