"""The sample Grafana dashboard in docs/ queries only metrics Segue exports,
through a Prometheus data source chosen by a variable."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from bot.assembly.app import build_app, create_segue
from bot.core.metrics import RATE_LIMIT_NAMES
from bot.core.settings import Settings
from context_store import MemoryContextStore

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
METRIC = re.compile(r"\bsegue_[a-z0-9_]+")
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def targets(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield from panel.get("targets", ())
        yield from targets(panel.get("panels", []))


def exported_names() -> set[str]:
    """Every sample name the registry can export, a labelled metric with no
    child yet included (its samples appear once it is first counted)."""
    names = set()
    for family in REGISTRY.collect():
        for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


async def test_every_metric_the_dashboard_queries_is_exported_once_the_app_is_built() -> None:
    segue = await create_segue(Settings(webchat_secret="s" * 32), store=MemoryContextStore())
    build_app(segue)
    queried = {name for target in targets(dashboard()["panels"])
               for name in METRIC.findall(target["expr"])}
    assert len(queried) >= 15  # the panels the dashboard promises, not an empty file
    missing = queried - exported_names()
    assert not missing, f"the dashboard queries metrics Segue does not export: {sorted(missing)}"
    await segue.store.close()


def test_every_panel_reads_the_prometheus_data_source_variable() -> None:
    board = dashboard()
    [variable] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    chosen = {"type": "prometheus", "uid": "${" + variable["name"] + "}"}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == chosen, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == chosen, panel["title"]


async def test_every_labelled_series_is_exported_at_zero_before_its_first_event() -> None:
    # An alert on a rate or an absence sees the series from the start.
    segue = await create_segue(Settings(webchat_secret="s" * 32), store=MemoryContextStore())
    build_app(segue)
    try:
        for labels in ({"channel": "web", "reason": "error"},
                       {"channel": "web", "reason": "refused"}):
            assert REGISTRY.get_sample_value("segue_replies_failed_total", labels) is not None
        assert REGISTRY.get_sample_value("segue_turns_total",
                                         {"channel": "web", "outcome": "duplicate"}) is not None
        assert REGISTRY.get_sample_value("segue_link_codes_refused_total",
                                         {"reason": "wait"}) is not None
        for limit in RATE_LIMIT_NAMES:
            assert REGISTRY.get_sample_value("segue_rate_limited_total",
                                             {"limit": limit}) is not None, limit
    finally:
        await segue.store.close()


def test_the_readme_names_every_limit_counted() -> None:
    readme = (DASHBOARD.parents[1] / "README.md").read_text(encoding="utf-8")
    [row] = [line for line in readme.splitlines()
             if line.startswith("| `segue_rate_limited_total`")]
    assert set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", row)) == set(RATE_LIMIT_NAMES)
