"""The two shapes of a log line: text for a person at a terminal, JSON (one
object per line) for a log collector. Both name the turn a line belongs to
(`bot.core.turn_log`) when it is known.

An exception's traceback is kept, but its message only where it cannot be
what a customer wrote (a network error, Segue's own errors) unless customer
text may be logged: a failing dialog's exception may quote the message or a
slot value it was given.
"""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

from bot.core.errors import BadInput, SegueError
from bot.core.turn_log import TurnIds, ids_of

ExcInfo = tuple[type[BaseException], BaseException, Any] | tuple[None, None, None]

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: [turn=… customer=…] message`, the bracket only
    within a turn."""

    def __init__(self, *, customer_text: bool = False) -> None:
        super().__init__()
        self.customer_text = customer_text

    def format(self, record: logging.LogRecord) -> str:
        # Not logging.Formatter.format: it caches the exception's text on the
        # record, where another handler's formatter may have put it whole.
        line = (f"{self.formatTime(record)} {record.levelname} {record.name}:"
                f"{turn_tag(ids_of(record))} {record.getMessage()}")
        if record.exc_info:
            line += "\n" + exception_text(record.exc_info, messages=self.customer_text).rstrip()
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time` (ISO-8601, UTC), `level`, `logger`,
    `message`; `turn_id`, `channel` and `customer_id` as far as known;
    `worker` and `pid` under `--workers`; `exception` and `stack` when
    there are any. Nothing else of the record (no `extra` fields) is written."""

    def __init__(self, *, customer_text: bool = False, worker: int | None = None,
                 with_pid: bool = False) -> None:
        super().__init__()
        self.customer_text = customer_text
        self.worker = worker
        self.with_pid = with_pid

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = ids_of(record)
        if ids is not None:
            data["turn_id"] = ids.turn_id
            if ids.channel is not None:
                data["channel"] = ids.channel
            if ids.customer_id is not None:
                data["customer_id"] = ids.customer_id
        if self.worker is not None:
            data["worker"] = self.worker
        if self.with_pid or self.worker is not None:
            data["pid"] = record.process
        if record.exc_info:
            data["exception"] = exception_text(record.exc_info, messages=self.customer_text)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(data).decode()


def turn_tag(ids: TurnIds | None) -> str:
    """` [turn=… customer=…]` as far as known; empty outside a turn."""
    if ids is None:
        return ""
    customer = f" customer={ids.customer_id}" if ids.customer_id is not None else ""
    return f" [turn={ids.turn_id}{customer}]"


def iso_time(created: float) -> str:
    """`2026-01-31T12:00:00.123Z`."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def exception_text(exc_info: ExcInfo, *, messages: bool) -> str:
    """The traceback of a logged exception (and of its causes), each
    exception's message left out unless `messages` or `message_is_safe`."""
    value = exc_info[1]
    if value is None:
        return ""
    return "".join(_chain(value, messages, set())).rstrip("\n")


def message_is_safe(exc: BaseException) -> bool:
    """Whether an exception's message is sure not to quote a customer:
    Segue's own errors (but bad input, which may quote what was sent) and
    the operating system's (a refused connection, a timeout)."""
    if isinstance(exc, BadInput):
        return False
    return isinstance(exc, SegueError | OSError)


def _chain(exc: BaseException, messages: bool, seen: set[int]) -> list[str]:
    seen.add(id(exc))
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += [*_chain(cause, messages, seen), _CAUSE]
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += [*_chain(context, messages, seen), _CONTEXT]
    if exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(exc.__traceback__)
    lines.append(_headline(exc, messages) + "\n")
    return lines


def _headline(exc: BaseException, messages: bool) -> str:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")
    if messages or message_is_safe(exc):
        return "".join(traceback.format_exception_only(exc)).rstrip("\n")
    return f"{name} (message withheld: it may quote what a customer wrote)"
