"""Logging for the `segue run` process: one format and level, levels per
component, every line of a turn marked with its ids, and customer text kept
out of the log unless `log_customer_text` lets it in.

Segue's own log lines leave out what customers write and what is sent to
them. Some libraries quote both at DEBUG; unless customer text is allowed,
their loggers are held at INFO (or the configured level, if higher), so a
DEBUG log of Segue still leaves those lines out, whatever `log_levels` asks
of them.
"""

from __future__ import annotations

import logging

from bot.assembly.log_format import JsonFormatter, TextFormatter
from bot.core import turn_log
from bot.core.settings import Settings, parse_log_levels

# The libraries whose DEBUG lines quote message bodies.
BODY_LOGGERS = (
    # Web API requests and answers (chat.postMessage text) and every Socket
    # Mode envelope (what users typed).
    "slack_sdk",
    # Skipped self events (the bot's own posts) and listener responses.
    "slack_bolt",
    # redis-py logs each RESP3 pub/sub push under this name: the handoff
    # events to the agent consoles carry the conversation.
    "push_response",
    # The events an in-process action returned, slot values included.
    "rasa_sdk",
)
# Bolt logs through the Slack connector's child logger; its INFO lines quote
# whole request bodies, so it is held at WARNING (`connectors.slack`).
BOLT_LOGGER = "connectors.slack.bolt"


def setup_logging(settings: Settings) -> None:
    """Set the format and level of the process's log, the level of each
    component named in `log_levels`, and what the body loggers may write."""
    turn_log.stamp_records()
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(settings))
    # Like basicConfig, a no-op where the root logger has handlers already
    # (under a test runner's capture).
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    if settings.log_format == "json":
        # A library's warning is a line of the log too, not bare text on stderr.
        logging.captureWarnings(True)
    level = body_log_level(settings)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name, named in component_levels(settings).items():
        logging.getLogger(name).setLevel(named)


def formatter_for(settings: Settings) -> logging.Formatter:
    """The formatter of `log_format`."""
    allowed = settings.log_customer_text
    if settings.log_format == "json":
        return JsonFormatter(customer_text=allowed, worker=settings.worker_index,
                             with_pid=settings.workers > 1)
    return TextFormatter(customer_text=allowed)


def component_levels(settings: Settings) -> dict[str, int]:
    """The levels `log_levels` names, by logger; one under a body logger is
    never below that logger's floor unless customer text is allowed."""
    if not settings.log_levels:
        return {}
    mapping = logging.getLevelNamesMapping()
    levels = {name: mapping[level] for name, level in parse_log_levels(settings.log_levels).items()}
    if settings.log_customer_text:
        return levels
    body = body_log_level(settings)
    for name, level in levels.items():
        if any(_under(name, parent) for parent in BODY_LOGGERS):
            levels[name] = max(level, body)
        elif _under(name, BOLT_LOGGER):
            levels[name] = max(level, logging.WARNING)
    return levels


def body_log_level(settings: Settings) -> int:
    """The level of the body loggers: the log's own (NOTSET defers to it)
    when customer text may be logged, else never below INFO."""
    if settings.log_customer_text:
        return logging.NOTSET
    # Not just INFO: handlers pass on whatever a logger lets through, so
    # INFO under a WARNING log would add these libraries' INFO lines.
    return max(logging.INFO, logging.getLevelNamesMapping()[settings.log_level])


def _under(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + ".")
