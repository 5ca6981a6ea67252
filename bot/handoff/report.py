"""The report of what the team did: handled conversations, response and
resolution times and ratings, overall and per agent, for whole UTC days.

It reads the anonymous records of closed handoffs (`HandoffRecord`); the
figures are plain medians and averages, so anyone can check them by hand.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.handoff.accounts import AgentError
from bot.handoff.ports import HandoffRecord

DEFAULT_DAYS = 7
MAX_DAYS = 366


def report_period(query: Mapping[str, str], today: date) -> tuple[date, date, float, float]:
    """The first and last day asked for (`from`, `to`: YYYY-MM-DD, UTC,
    both counted; by default the last 7 days up to `today`), and the
    [start, end) they span in unix seconds."""
    try:
        last = _day(query, "to") or today
        first = _day(query, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
        end_day = last + timedelta(days=1)
    except OverflowError:
        raise AgentError("bad_fields", "the period must lie within the years 1 to 9999") \
            from None
    if first > last:
        raise AgentError("bad_fields", "'from' must not be after 'to'")
    if (last - first).days + 1 > MAX_DAYS:
        raise AgentError("bad_fields", f"a report covers at most {MAX_DAYS} days")
    start = datetime.combine(first, datetime.min.time(), UTC).timestamp()
    end = datetime.combine(end_day, datetime.min.time(), UTC).timestamp()
    return first, last, start, end


def _day(query: Mapping[str, str], name: str) -> date | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise AgentError("bad_fields", f"'{name}' must be a day as YYYY-MM-DD") from None


def handoff_report(records: Sequence[HandoffRecord], names: Mapping[str, str],
                   first: date, last: date) -> dict[str, Any]:
    """The report's JSON: `overall` and each agent's figures (by username);
    `names` gives display names (an account deleted since keeps its
    record's)."""
    by_agent: dict[str, list[HandoffRecord]] = {}
    for record in records:
        by_agent.setdefault(record.agent, []).append(record)
    agents = [{"agent": agent,
               "name": names.get(agent) or held[-1].agent_name or agent,
               **_figures(held)}
              for agent, held in sorted(by_agent.items())]
    return {"from": first.isoformat(), "to": last.isoformat(),
            "overall": _figures(records), "agents": agents}


def _figures(records: Sequence[HandoffRecord]) -> dict[str, Any]:
    first_responses = [r.first_response_at - r.queued_at for r in records
                       if r.first_response_at is not None]
    resolutions = [r.closed_at - r.queued_at for r in records]
    scores = [r.csat for r in records if r.csat is not None]
    return {
        "handled": len(records),
        "median_first_response_seconds": _median(first_responses),
        "median_resolution_seconds": _median(resolutions),
        "csat_average": round(statistics.fmean(scores), 2) if scores else None,
        "csat_count": len(scores),
    }


def _median(seconds: Iterable[float]) -> float | None:
    values = [max(0.0, s) for s in seconds]
    return round(statistics.median(values), 1) if values else None
