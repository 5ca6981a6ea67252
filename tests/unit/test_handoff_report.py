"""The report's figures from handoff records, worked out by hand, and the
period it covers (`bot.handoff.report`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.handoff.accounts import AgentError
from bot.handoff.ports import HandoffRecord
from bot.handoff.report import handoff_report, report_period

DAY = date(2026, 11, 20)
MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC).timestamp()


def closed(name: str, agent: str, *, hour: int, first: float | None, resolution: float,
           csat: int | None = None) -> HandoffRecord:
    """A handoff queued at `hour`, first answered `first` seconds later (or
    never) and closed `resolution` seconds after it was queued."""
    queued = MIDNIGHT + hour * 3600
    return HandoffRecord(id=name, agent=agent, agent_name=agent.title(), queued_at=queued,
                         claimed_at=queued + 5,
                         first_response_at=None if first is None else queued + first,
                         closed_at=queued + resolution, csat=csat)


# Three agents, seven handoffs. By hand:
#   ann: first responses 60, 120 (one never answered) -> 90; resolutions
#        300, 600, 1200 -> 600; scores 5, 4 -> 4.5 of 2.
#   bob: first responses 30, 90.4 -> 60.2; resolutions 900, 1500 -> 1200;
#        score 2 -> 2.0 of 1.
#   cid (account deleted since): first responses 15, 45 -> 30; resolutions
#        100, 400 -> 250; scores 3, 4 -> 3.5 of 2.
#   overall: first responses 15 30 45 | 60 90.4 120 -> 52.5; resolutions
#        100 300 400 [600] 900 1200 1500 -> 600; scores 5 4 2 3 4 -> 3.6 of 5.
SCRIPTED_DAY = [
    closed("c1", "cid", hour=8, first=45, resolution=400, csat=3),
    closed("b1", "bob", hour=9, first=30, resolution=900, csat=2),
    closed("a1", "ann", hour=9, first=60, resolution=600, csat=5),
    closed("a2", "ann", hour=10, first=120, resolution=1200, csat=4),
    closed("c2", "cid", hour=11, first=15, resolution=100, csat=4),
    closed("a3", "ann", hour=12, first=None, resolution=300),
    closed("b2", "bob", hour=15, first=90.4, resolution=1500),
]
NAMES = {"ann": "Ann", "bob": "Bob B.", "dee": "Dee"}


def test_a_scripted_day_per_agent_and_overall() -> None:
    report = handoff_report(SCRIPTED_DAY, NAMES, DAY, DAY)
    assert report == {
        "from": "2026-11-20", "to": "2026-11-20",
        "overall": {"handled": 7, "median_first_response_seconds": 52.5,
                    "median_resolution_seconds": 600.0, "csat_average": 3.6,
                    "csat_count": 5},
        "agents": [
            {"agent": "ann", "name": "Ann", "handled": 3,
             "median_first_response_seconds": 90.0, "median_resolution_seconds": 600.0,
             "csat_average": 4.5, "csat_count": 2},
            {"agent": "bob", "name": "Bob B.", "handled": 2,
             "median_first_response_seconds": 60.2, "median_resolution_seconds": 1200.0,
             "csat_average": 2.0, "csat_count": 1},
            # No account any more: the name its records kept.
            {"agent": "cid", "name": "Cid", "handled": 2,
             "median_first_response_seconds": 30.0, "median_resolution_seconds": 250.0,
             "csat_average": 3.5, "csat_count": 2},
        ],
    }


def test_the_order_records_come_in_changes_nothing() -> None:
    assert handoff_report(SCRIPTED_DAY[::-1], NAMES, DAY, DAY) == handoff_report(
        SCRIPTED_DAY, NAMES, DAY, DAY)


def test_nothing_to_count_is_null_and_agents_without_handoffs_are_left_out() -> None:
    assert handoff_report([], NAMES, date(2026, 11, 14), DAY) == {
        "from": "2026-11-14", "to": "2026-11-20",
        "overall": {"handled": 0, "median_first_response_seconds": None,
                    "median_resolution_seconds": None, "csat_average": None,
                    "csat_count": 0},
        "agents": [],
    }
    unanswered = [closed("a", "ann", hour=9, first=None, resolution=60)]
    figures = handoff_report(unanswered, NAMES, DAY, DAY)["overall"]
    assert figures["median_first_response_seconds"] is None
    assert figures["median_resolution_seconds"] == 60.0
    assert (figures["csat_average"], figures["csat_count"]) == (None, 0)


def test_seconds_keep_one_decimal_and_the_average_two() -> None:
    records = [closed("a", "ann", hour=9, first=10.26, resolution=99.94, csat=5),
               closed("b", "ann", hour=10, first=10.26, resolution=99.94, csat=4),
               closed("c", "ann", hour=11, first=10.26, resolution=99.94, csat=4)]
    figures = handoff_report(records, NAMES, DAY, DAY)["overall"]
    assert figures["median_first_response_seconds"] == 10.3
    assert figures["median_resolution_seconds"] == 99.9
    assert figures["csat_average"] == 4.33


def test_a_clock_behind_another_workers_never_gives_a_negative_time() -> None:
    early = closed("a", "ann", hour=9, first=-2.0, resolution=-1.0)
    figures = handoff_report([early], NAMES, DAY, DAY)["overall"]
    assert figures["median_first_response_seconds"] == 0.0
    assert figures["median_resolution_seconds"] == 0.0


def test_an_agent_with_no_display_name_is_shown_by_username() -> None:
    record = HandoffRecord(id="a", agent="eve", agent_name="", queued_at=MIDNIGHT,
                           claimed_at=None, first_response_at=None, closed_at=MIDNIGHT + 60)
    [row] = handoff_report([record], {}, DAY, DAY)["agents"]
    assert row["name"] == "eve"


def midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


TODAY = date(2026, 11, 27)


@pytest.mark.parametrize(("query", "first", "last"), [
    ({}, date(2026, 11, 21), TODAY),
    ({"from": "", "to": ""}, date(2026, 11, 21), TODAY),
    ({"to": "2026-11-10"}, date(2026, 11, 4), date(2026, 11, 10)),
    ({"from": "2026-11-01"}, date(2026, 11, 1), TODAY),
    ({"from": "2026-11-20", "to": "2026-11-20"}, DAY, DAY),
    # A leap year whole: 366 days is the most.
    ({"from": "2024-01-01", "to": "2024-12-31"}, date(2024, 1, 1), date(2024, 12, 31)),
    # Days to come are asked for as any others: nothing closed then yet.
    ({"from": "2027-01-01", "to": "2027-01-02"}, date(2027, 1, 1), date(2027, 1, 2)),
    # The first and last days a date can hold a whole day's end for.
    ({"from": "0001-01-01", "to": "0001-01-07"}, date(1, 1, 1), date(1, 1, 7)),
    ({"to": "9999-12-30"}, date(9999, 12, 24), date(9999, 12, 30)),
])
def test_the_period_counts_both_days_whole_in_utc(
    query: dict[str, str], first: date, last: date
) -> None:
    start_day, end_day, start, end = report_period(query, TODAY)
    assert (start_day, end_day) == (first, last)
    assert start == midnight(first)
    assert end == midnight(last) + 86400


def test_one_day_spans_exactly_its_24_hours() -> None:
    _, _, start, end = report_period({"from": "2026-11-20", "to": "2026-11-20"}, TODAY)
    assert (start, end) == (MIDNIGHT, MIDNIGHT + 86400)


@pytest.mark.parametrize(("query", "message"), [
    ({"from": "yesterday"}, "'from' must be a day as YYYY-MM-DD"),
    ({"to": "2026-13-01"}, "'to' must be a day as YYYY-MM-DD"),
    ({"from": "2026-02-30"}, "'from' must be a day as YYYY-MM-DD"),
    ({"to": "2026-1-05"}, "'to' must be a day as YYYY-MM-DD"),
    ({"to": "20261105"}, "'to' must be a day as YYYY-MM-DD"),
    ({"from": "2026-11-20T00:00"}, "'from' must be a day as YYYY-MM-DD"),
    ({"from": "2026-11-21", "to": "2026-11-20"}, "'from' must not be after 'to'"),
    # 'to' is today unless given: a 'from' after it is refused as well.
    ({"from": "2026-11-28"}, "'from' must not be after 'to'"),
    ({"from": "2023-12-31", "to": "2024-12-31"}, "a report covers at most 366 days"),
    ({"from": "2020-01-01"}, "a report covers at most 366 days"),
    # Days whose end, or whose default start, no date can hold.
    ({"to": "9999-12-31"}, "the period must lie within the years 1 to 9999"),
    ({"to": "0001-01-02"}, "the period must lie within the years 1 to 9999"),
])
def test_a_bad_period_is_refused_with_a_reason(query: dict[str, str], message: str) -> None:
    with pytest.raises(AgentError) as refused:
        report_period(query, TODAY)
    assert (refused.value.code, refused.value.message) == ("bad_fields", message)
