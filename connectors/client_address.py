"""The address a request comes from, as every per-client limit counts it.

Behind a reverse proxy every request comes from the proxy, so the client's
address is read from the header the proxy sets — but only when the operator
names that header (`SEGUE_TRUSTED_PROXY_HEADER`): without a proxy that
overwrites it, a client could put any address there.
"""

from __future__ import annotations

from aiohttp import web

UNKNOWN = "unknown"


def client_address(request: web.Request, trusted_header: str | None) -> str:
    """The client's address: the trusted proxy header's value, or the peer."""
    if trusted_header:
        value = request.headers.get(trusted_header, "")
        # X-Forwarded-For grows by one entry per proxy; the last one was
        # written by ours, the ones before it by whoever sent the request.
        last = value.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.remote or UNKNOWN


def is_https(request: web.Request, trusted_header: str | None) -> bool:
    """Whether the client reached us over TLS: directly, or through a trusted
    proxy that says so in `X-Forwarded-Proto`."""
    if request.secure:
        return True
    if not trusted_header:
        return False
    proto = request.headers.get("X-Forwarded-Proto", "")
    return proto.rsplit(",", 1)[-1].strip().lower() == "https"
