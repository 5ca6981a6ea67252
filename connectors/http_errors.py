"""The JSON error answer of Segue's HTTP routes: `{"error": code, "message": text}`."""

from __future__ import annotations

from aiohttp import web

from bot.core import metrics


def json_error(
    code: str, message: str, *, status: int, headers: dict[str, str] | None = None
) -> web.Response:
    """An error answer: `code` for programs, `message` for people."""
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def refuse(channel: str, code: str, message: str, *, status: int) -> web.Response:
    """A channel's inbound request refused as bad input: counted in
    `segue_bad_input_total` under `channel` and `code`, then answered."""
    metrics.BAD_INPUT.labels(channel, code).inc()
    return json_error(code, message, status=status)
