"""A static text file served as a browser expects of a script it embeds on
every page: gzip-compressed when accepted, cacheable, revalidated by ETag."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from aiohttp import web


class CompressedFile:
    """One file, read and compressed once, and again whenever it changes on
    disk (a deploy that replaces it is served at once)."""

    def __init__(self, path: Path, content_type: str, *, max_age_seconds: int = 300) -> None:
        self.path = path
        self.content_type = content_type
        # Short: a new version reaches visitors within minutes, and the ETag
        # makes each check after that a 304 without a body.
        self.max_age_seconds = max_age_seconds
        self._mtime_ns: int | None = None
        self._plain = b""
        self._gzipped = b""
        self._etag = ""

    def _load(self) -> None:
        mtime_ns = self.path.stat().st_mtime_ns
        if mtime_ns == self._mtime_ns:
            return
        plain = self.path.read_bytes()
        self._plain, self._gzipped = plain, gzip.compress(plain, compresslevel=9, mtime=0)
        self._etag = '"' + hashlib.sha256(plain).hexdigest()[:20] + '"'
        self._mtime_ns = mtime_ns

    def response(self, request: web.Request) -> web.Response:
        self._load()
        headers = {
            "Content-Type": self.content_type,
            "Cache-Control": f"public, max-age={self.max_age_seconds}",
            "ETag": self._etag,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        given = {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}
        if self._etag in given or "*" in given:
            return web.Response(status=304, headers=headers)
        if _accepts_gzip(request.headers.get("Accept-Encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=self._gzipped, headers=headers)
        return web.Response(body=self._plain, headers=headers)


def _accepts_gzip(header: str) -> bool:
    """Whether `Accept-Encoding` allows gzip (`gzip;q=0` refuses it)."""
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and _quality(q[2:]) == 0)
    return False


def _quality(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 1.0
