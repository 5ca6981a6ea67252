"""Logging for the `segue run` process: one format and level, and customer
text kept out of the log unless `log_customer_text` lets it in.

Segue's own log lines leave out what customers write and what is sent to
them. Some libraries quote both at DEBUG; unless customer text is allowed,
their loggers are held at INFO (or the configured level, if higher), so a
DEBUG log of Segue still leaves those lines out.
"""

from __future__ import annotations

import logging

from bot.core.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

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


def setup_logging(settings: Settings) -> None:
    """Set the format and level of the process's log, and what the body
    loggers may write to it."""
    logging.basicConfig(level=settings.log_level, format=FORMAT)
    level = body_log_level(settings)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def body_log_level(settings: Settings) -> int:
    """The level of the body loggers: the log's own (NOTSET defers to it)
    when customer text may be logged, else never below INFO."""
    if settings.log_customer_text:
        return logging.NOTSET
    # Not just INFO: handlers pass on whatever a logger lets through, so
    # INFO under a WARNING log would add these libraries' INFO lines.
    return max(logging.INFO, logging.getLevelNamesMapping()[settings.log_level])
