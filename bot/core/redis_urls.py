"""What is wrong with a store URL, found before anything connects.

Each check reads a URL the way the store's connect does (redis-py's
`from_url` for `redis://` and `rediss://`, its own parsers for Sentinel
and Cluster URLs). Messages never quote the part before `@`: it may hold
a password.
"""

from __future__ import annotations

import re

REDIS_SCHEMES = ("redis://", "rediss://")
SENTINEL_SCHEME = "redis+sentinel://"
CLUSTER_SCHEME = "redis+cluster://"
STORE_SCHEMES = (*REDIS_SCHEMES, "unix://", SENTINEL_SCHEME, CLUSTER_SCHEME)

# A node of a Redis Cluster URL: host:port, an IPv6 host in brackets.
_CLUSTER_NODE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\s\[\]:/,@]+):(\d{1,5})")
# A host with an optional port: an IPv6 host in brackets.
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s\[\]:/,@]+)(?::([^/]*))?")
_PORTS = "a number from 1 to 65535"


def store_url_problem(url: str) -> str | None:
    """What is wrong with a store URL, None if nothing."""
    if not url.startswith(STORE_SCHEMES):
        return "must start with " + ", ".join(STORE_SCHEMES)
    if url.startswith(REDIS_SCHEMES):
        return redis_url_problem(url)
    if url.startswith(SENTINEL_SCHEME):
        return sentinel_url_problem(url)
    return cluster_url_problem(url)


def _port_problem(port: str | None, what: str) -> str | None:
    if port is None:
        return None
    if not port.isdecimal() or not 0 < int(port) < 65536:
        return f"{what}: the port must be {_PORTS}"
    return None


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a `redis[s]://[[user]:password@]host[:port][/db][?options]`
    URL, None if nothing or not one."""
    scheme = next((s for s in REDIS_SCHEMES if url.startswith(s)), None)
    if scheme is None:
        return None
    what = f"a {scheme} URL"
    rest = url.removeprefix(scheme)
    # As urllib splits it (redis-py uses urllib): the authority ends at the
    # first '/', '?' or '#'.
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    path = rest[len(authority):].partition("?")[0].partition("#")[0]
    where = authority.rpartition("@")[2]  # past any password
    match = _HOST_PORT.fullmatch(where)
    if match is None:
        return f"{what} needs a host: {scheme}[:password@]host[:port][/db]"
    if problem := _port_problem(match.group(2), what):
        return problem
    db = path.removeprefix("/")
    if db and not db.isdecimal():
        return f"{what} ends with a database number (/0), not a name"
    return None


def sentinel_url_problem(url: str) -> str | None:
    """What is wrong with a `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]
    /service[/db]` URL (the store's connect reads it alike), None if nothing or not one."""
    if not url.startswith(SENTINEL_SCHEME):
        return None
    what = f"a {SENTINEL_SCHEME} URL"
    where = url.removeprefix(SENTINEL_SCHEME).rpartition("@")[2]  # past any password
    hosts, _, path = where.partition("/")
    service, _, db = path.partition("/")
    for entry in hosts.split(","):
        match = _HOST_PORT.fullmatch(entry)
        if match is None:
            return (f"{what} lists its sentinels as host[:port][,host[:port]...] before "
                    f"the service name, with at least one host")
        if problem := _port_problem(match.group(2), what):
            return problem
    if not service:
        return f"{what} needs a service name: {SENTINEL_SCHEME}host:port/<service>[/db]"
    if db and not db.isdecimal():
        return f"{what} ends with the service name and a database number (/mymaster/0)"
    return None


def cluster_url_problem(url: str) -> str | None:
    """What is wrong with a `redis+cluster://[[user]:password@]host:port[,host:port...]`
    URL (the store's connect reads it alike), None if nothing or not one."""
    if not url.startswith(CLUSTER_SCHEME):
        return None
    where = url.removeprefix(CLUSTER_SCHEME).rpartition("@")[2]  # past any password
    if "?" in where or "#" in where:
        return "a redis+cluster:// URL takes no query or fragment"
    nodes, _, path = where.partition("/")
    if path not in ("", "0"):
        return "a Redis Cluster has only database 0: end the URL with the last host:port"
    for node in nodes.split(","):
        match = _CLUSTER_NODE.fullmatch(node)
        if match is None or not 0 < int(match.group(1)) < 65536:
            return (f"a redis+cluster:// URL lists its nodes as host:port[,host:port...] "
                    f"with ports from 1 to 65535, not {node!r}")
    return None
