"""Prometheus metrics, served at `/metrics`.

Names follow Prometheus conventions: a `segue_` prefix, `_total` on
counters, base units (`_seconds`). With `segue run --workers N` every worker
writes its values to files in `PROMETHEUS_MULTIPROC_DIR` (set by the
supervisor) and `/metrics` on any worker shows the whole deployment: counters
and histograms are summed, gauges of what a worker holds (sockets, consoles,
replies in hand) summed over live workers, and gauges of a shared fact (the
handoff queue, the inbox lag) the latest value any live worker read.
"""

import functools
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

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

# Delivery.
REPLIES_SENT = Counter(
    "segue_replies_sent_total", "Replies a channel accepted for delivery, by channel", ["channel"]
)
REPLIES_FAILED = Counter(
    "segue_replies_failed_total",
    "Replies not delivered, by channel and reason (refused: the channel said no; "
    "no_connector: the channel is not enabled here; error: a fault in the connector)",
    ["channel", "reason"],
)
OUTBOX_BACKLOG = Gauge(
    "segue_outbox_backlog_replies",
    "Replies saved in outboxes that workers are delivering and have not finished sending",
    multiprocess_mode="livesum",
)
OUTBOX_OVERDUE = Gauge(
    "segue_outbox_overdue_customers",
    "Customers whose saved replies no live worker is delivering, as the last outbox "
    "sweep found them (a dead worker's leftovers; capped at one sweep's batch)",
    multiprocess_mode="livemostrecent",
)

# Open connections, held by each worker.
WEBCHAT_SOCKETS = Gauge(
    "segue_webchat_sockets", "Open web chat WebSockets with a session",
    multiprocess_mode="livesum",
)
AGENT_CONSOLES = Gauge(
    "segue_agent_consoles", "Agent console WebSockets connected", multiprocess_mode="livesum"
)

# Handoff to people.
HANDOFF_QUEUE = Gauge(
    "segue_handoff_queue_length", "Conversations waiting for a person (claimed ones not counted)",
    multiprocess_mode="livemostrecent",
)
HANDOFF_WAIT_SECONDS = Histogram(
    "segue_handoff_wait_seconds",
    "Time from a customer's request for a person until an agent claims the conversation",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200),
)

# Store.
REDIS_BATCH_SECONDS = Histogram(
    "segue_redis_batch_seconds",
    "Round trip of one batch of Redis commands written together on the shared connection, "
    "from its write until its last answer is read",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
INBOX_LAG = Gauge(
    "segue_inbox_lag_seconds",
    "Age of the oldest inbound item (Telegram, Slack) queued and not yet handled; 0 when none",
    multiprocess_mode="livemostrecent",
)

# Linking channels.
LINK_CODES_ISSUED = Counter("segue_link_codes_issued_total", "One-time link codes given out")
LINK_CODES_REDEEMED = Counter(
    "segue_link_codes_redeemed_total",
    "Link codes (via=code) and deep links (via=link) used to join two conversations",
    ["via"],
)
LINK_CODES_REFUSED = Counter(
    "segue_link_codes_refused_total",
    "Link codes refused, by reason (invalid: unknown or expired; wait: too many wrong "
    "codes; used: gone by the time of the yes)",
    ["reason"],
)

# Abuse limits.
RATE_LIMITED = Counter(
    "segue_rate_limited_total", "Requests refused by a per-client limit, by limit", ["limit"]
)


@functools.cache
def turns(channel: str, outcome: str) -> Counter:
    """The turn counter of one channel and outcome; labels() costs a lock and
    a lookup on every call, so each child is looked up once."""
    return TURNS.labels(channel, outcome)


@functools.cache
def replies_sent(channel: str) -> Counter:
    """The sent-replies counter of one channel (looked up once, as `turns`)."""
    return REPLIES_SENT.labels(channel)


@functools.cache
def rate_limited(limit: str) -> Counter:
    """The refusals counter of one limit (looked up once, as `turns`)."""
    return RATE_LIMITED.labels(limit)


# Every limit `segue_rate_limited_total` counts (README "Metrics").
RATE_LIMIT_NAMES = ("connections-addr", "sessions-addr", "codes-cust", "codes-addr",
                    "handoffs-cust", "handoffs-addr", "messages-session", "messages-addr",
                    "link-codes-wrong", "logins-addr", "logins-user", "notes-agent",
                    "notes-cust", "api-key", "api-sends-cust")


def declare_series(channels: Iterable[str]) -> None:
    """Every labelled series a deployment of these channels can count, at 0:
    a series that appears only with its first event leaves an alert on it
    (a rate, an absence) blind until then."""
    for channel in channels:
        for outcome in ("processed", "duplicate"):
            turns(channel, outcome)
        replies_sent(channel)
        DELIVERY_FAILURES.labels(channel)
        for reason in ("refused", "no_connector", "error"):
            REPLIES_FAILED.labels(channel, reason)
    for via in ("code", "link"):
        LINK_CODES_REDEEMED.labels(via)
    for reason in ("invalid", "wait", "used"):
        LINK_CODES_REFUSED.labels(reason)
    for limit in RATE_LIMIT_NAMES:
        rate_limited(limit)


# The public API (`/api/v1`).
API_MESSAGES = Counter(
    "segue_api_messages_total",
    "Messages the business sent through the public API (a started flow's each), by the "
    "channel they went to and what became of them (sent, on_next_open, refused, pending)",
    ["channel", "status"],
)

# Events out (`SEGUE_EVENTS_URL`).
EVENTS_SENT = Counter(
    "segue_events_sent_total", "Events the events URL accepted (answered 2xx)"
)
EVENTS_FAILED = Counter(
    "segue_events_failed_total",
    "Attempts to send an event that failed and will be retried, by reason (status: an "
    "answer other than 2xx; timeout; error: the connection failed)",
    ["reason"],
)
EVENTS_DROPPED = Counter(
    "segue_events_dropped_total",
    "Events given up, by reason (overflow: over 10,000 waiting for one customer, the oldest; "
    "expired: not sent within 3 days; store_error: the store refused it when emitted; "
    "unreadable: not an event)",
    ["reason"],
)
EVENTS_FAILED_REASONS = ("status", "timeout", "error")
EVENTS_DROPPED_REASONS = ("overflow", "expired", "store_error", "unreadable")


@functools.cache
def events_failed(reason: str) -> Counter:
    """The failed-sends counter of one reason (looked up once, as `turns`)."""
    return EVENTS_FAILED.labels(reason)


@functools.cache
def events_dropped(reason: str) -> Counter:
    """The dropped-events counter of one reason (looked up once, as `turns`)."""
    return EVENTS_DROPPED.labels(reason)


def declare_events_series() -> None:
    """The events-out series at 0, as `declare_series` does for channels."""
    for reason in EVENTS_FAILED_REASONS:
        events_failed(reason)
    for reason in EVENTS_DROPPED_REASONS:
        events_dropped(reason)
