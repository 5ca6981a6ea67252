"""Prometheus metrics, served at `/metrics`."""

import functools

from prometheus_client import Counter, Histogram

TURNS = Counter(
    "segue_turns_total", "Inbound messages by channel and outcome", ["channel", "outcome"]
)
TURN_SECONDS = Histogram(
    "segue_turn_seconds",
    "Time from an inbound message to its saved turn",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DELIVERY_FAILURES = Counter(
    "segue_delivery_failures_total", "Replies a channel could not deliver", ["channel"]
)
BAD_INPUT = Counter(
    "segue_bad_input_total", "Refused inbound input by channel and code", ["channel", "code"]
)
IGNORED = Counter(
    "segue_ignored_total",
    "Inbound updates left unanswered on purpose (service messages, bots), by channel and reason",
    ["channel", "reason"],
)
PARKED = Counter(
    "segue_parked_total",
    "Inbound updates kept for an operator instead of handled, by channel and reason",
    ["channel", "reason"],
)


@functools.cache
def turns(channel: str, outcome: str) -> Counter:
    """The turn counter of one channel and outcome; labels() costs a lock and
    a lookup on every call, so each child is looked up once."""
    return TURNS.labels(channel, outcome)
