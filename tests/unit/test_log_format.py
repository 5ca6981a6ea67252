"""The log's two formats, the turn ids stamped on each record, and the
levels `setup_logging` sets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from bot.assembly.log_format import JsonFormatter, TextFormatter, exception_text
from bot.assembly.log_setup import (
    BODY_LOGGERS,
    BOLT_LOGGER,
    component_levels,
    formatter_for,
    setup_logging,
)
from bot.core import turn_log
from bot.core.errors import BadInput, StoreUnavailable
from bot.core.settings import Settings

SECRET = "my card is 4111 1111"


class Recorder(logging.Handler):
    """Keeps every record that reaches it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorded() -> Iterator[tuple[logging.Logger, Recorder]]:
    """A logger of its own, at DEBUG, its records stamped and kept."""
    turn_log.stamp_records()
    logger = logging.getLogger("tests.log_format")
    recorder = Recorder()
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, recorder
    logger.removeHandler(recorder)
    logger.propagate = True


@pytest.fixture
def logger_levels() -> Iterator[None]:
    """`setup_logging` changes process-wide levels: put them back afterwards."""
    names = [*BODY_LOGGERS, BOLT_LOGGER, "connectors.telegram", "context_store",
             "slack_sdk.web.base_client", "connectors.slack.bolt.listener"]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def json_of(record: logging.LogRecord, **options: object) -> dict[str, object]:
    line = JsonFormatter(**options).format(record)  # type: ignore[arg-type]
    assert "\n" not in line
    data: dict[str, object] = json.loads(line)
    return data


def test_a_json_line_names_time_level_logger_message_and_the_turn(
    recorded: tuple[logging.Logger, Recorder],
) -> None:
    logger, recorder = recorded
    with turn_log.turn("872310001", channel="telegram"):
        turn_log.identify("c-1")
        logger.warning("delivery to %s failed", "telegram")
    data = json_of(recorder.records[0])
    assert data.pop("time") == data_time(recorder.records[0])
    assert data == {"level": "WARNING", "logger": "tests.log_format",
                    "message": "delivery to telegram failed", "turn_id": "872310001",
                    "channel": "telegram", "customer_id": "c-1"}


def data_time(record: logging.LogRecord) -> str:
    text = JsonFormatter().format(record)
    moment: str = json.loads(text)["time"]
    assert moment.endswith("Z")
    parsed = datetime.fromisoformat(moment)
    assert parsed.utcoffset() is not None and not parsed.utcoffset()
    assert abs(parsed.timestamp() - record.created) < 0.001
    return moment


def test_a_line_outside_a_turn_names_none(recorded: tuple[logging.Logger, Recorder]) -> None:
    logger, recorder = recorded
    with turn_log.turn(channel="web"):
        pass
    logger.info("shutting down")
    data = json_of(recorder.records[0])
    assert not {"turn_id", "customer_id", "channel"} & data.keys()
    assert TextFormatter().format(recorder.records[0]).endswith(
        "INFO tests.log_format: shutting down")


def test_the_text_format_tags_a_turn_s_lines(recorded: tuple[logging.Logger, Recorder]) -> None:
    logger, recorder = recorded
    with turn_log.turn("t1", channel="web"):
        logger.info("before the customer is known")
        turn_log.identify("c-9")
        logger.info("after")
    before, after = (TextFormatter().format(r) for r in recorder.records)
    assert before.endswith("INFO tests.log_format: [turn=t1] before the customer is known")
    assert after.endswith("INFO tests.log_format: [turn=t1 customer=c-9] after")


async def test_the_customer_named_inside_stays_for_the_rest_of_the_turn_only(
    recorded: tuple[logging.Logger, Recorder],
) -> None:
    logger, recorder = recorded

    async def engine() -> None:
        turn_log.identify("c-2")

    async def typing() -> None:
        logger.debug("typing")

    with turn_log.turn("t2", channel="telegram"):
        await engine()
        logger.info("the connector after the engine")
        await asyncio.create_task(typing())
    logger.info("the next update")
    ids = [turn_log.ids_of(r) for r in recorder.records]
    assert ids == [turn_log.TurnIds("t2", "telegram", "c-2")] * 2 + [None]


async def test_a_turn_inside_one_of_the_same_id_keeps_what_it_learns(
    recorded: tuple[logging.Logger, Recorder],
) -> None:
    logger, recorder = recorded
    with turn_log.turn("t3", channel="slack"):
        with turn_log.ensure_turn(channel="slack"):
            turn_log.identify("c-3")
        logger.info("after")
    assert turn_log.ids_of(recorder.records[0]) == turn_log.TurnIds("t3", "slack", "c-3")


async def test_turns_running_at_once_never_mix_their_ids(
    recorded: tuple[logging.Logger, Recorder],
) -> None:
    logger, recorder = recorded
    both = asyncio.Barrier(2)

    async def one(customer: str) -> None:
        with turn_log.turn(channel="web"):
            await both.wait()
            turn_log.identify(customer)
            await both.wait()
            logger.info("turn of %s", customer)

    await asyncio.gather(one("c-a"), one("c-b"))
    by_customer = {r.getMessage(): turn_log.ids_of(r) for r in recorder.records}
    a, b = by_customer["turn of c-a"], by_customer["turn of c-b"]
    assert a is not None and b is not None
    assert (a.customer_id, b.customer_id) == ("c-a", "c-b")
    assert a.turn_id != b.turn_id


def test_random_turn_ids_are_short_and_differ() -> None:
    ids = {turn_log.new_turn_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 12 for i in ids)


def test_extra_fields_are_not_written(recorded: tuple[logging.Logger, Recorder]) -> None:
    logger, recorder = recorded
    logger.info("a library's line", extra={"text": SECRET, "channel": "x"})
    line = JsonFormatter().format(recorder.records[0])
    assert SECRET not in line
    assert "channel" not in json.loads(line)


def raise_quoting_text() -> None:
    try:
        raise StoreUnavailable("Redis is not answering")
    except StoreUnavailable as exc:
        raise KeyError(SECRET) from exc


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_an_exception_s_message_is_withheld_unless_customer_text_is_allowed(
    recorded: tuple[logging.Logger, Recorder], formatter: type[JsonFormatter] | type[TextFormatter],
) -> None:
    logger, recorder = recorded
    try:
        raise_quoting_text()
    except KeyError:
        logger.exception("the dialog policy failed")
    record = recorder.records[0]
    # Another handler's formatter caches the whole text on the record first.
    logging.Formatter().format(record)
    withheld = formatter().format(record)
    allowed = formatter(customer_text=True).format(record)
    assert SECRET not in withheld
    assert "KeyError (message withheld" in withheld
    # Segue's own errors keep theirs, as does the traceback.
    assert "StoreUnavailable: Redis is not answering" in withheld
    assert "direct cause" in withheld and "raise_quoting_text" in withheld
    assert SECRET in allowed


def test_an_exception_lands_in_the_json_exception_field(
    recorded: tuple[logging.Logger, Recorder],
) -> None:
    logger, recorder = recorded
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError:
        logger.error("cannot reach the store", exc_info=True)
    data = json_of(recorder.records[0])
    assert data["message"] == "cannot reach the store"
    assert isinstance(data["exception"], str)
    assert data["exception"].endswith("ConnectionRefusedError: [Errno 111] Connection refused")


def test_bad_input_may_quote_what_was_sent() -> None:
    error = BadInput("unknown_type", f"unknown frame type {SECRET!r}")
    assert SECRET not in exception_text((BadInput, error, None), messages=False)


def test_under_workers_each_line_names_the_worker_and_its_pid(
    recorded: tuple[logging.Logger, Recorder],
) -> None:
    logger, recorder = recorded
    logger.info("serving")
    record = recorder.records[0]
    assert json_of(record, worker=2)["worker"] == 2
    assert json_of(record, worker=2)["pid"] == record.process
    assert json_of(record, with_pid=True)["pid"] == record.process
    assert not {"worker", "pid"} & json_of(record).keys()


def test_log_levels_set_each_named_logger(logger_levels: None) -> None:
    setup_logging(Settings(log_levels="connectors.telegram=DEBUG, context_store=warning"))
    assert logging.getLogger("connectors.telegram").level == logging.DEBUG
    assert logging.getLogger("context_store").level == logging.WARNING


def test_log_levels_cannot_open_the_body_loggers_without_customer_text(
    logger_levels: None,
) -> None:
    held = Settings(log_levels="slack_sdk.web.base_client=DEBUG,rasa_sdk=WARNING,"
                               "connectors.slack.bolt.listener=DEBUG")
    assert component_levels(held) == {"slack_sdk.web.base_client": logging.INFO,
                                      "rasa_sdk": logging.WARNING,
                                      "connectors.slack.bolt.listener": logging.WARNING}
    setup_logging(held)
    assert logging.getLogger("slack_sdk.web.base_client").level == logging.INFO
    allowed = held.model_copy(update={"log_customer_text": True})
    assert component_levels(allowed)["slack_sdk.web.base_client"] == logging.DEBUG


def test_the_json_format_is_chosen_by_log_format() -> None:
    assert isinstance(formatter_for(Settings(log_format="json")), JsonFormatter)
    assert isinstance(formatter_for(Settings()), TextFormatter)
    worker = formatter_for(Settings(log_format="json", worker_index=1, workers=2))
    assert isinstance(worker, JsonFormatter) and worker.worker == 1
