"""The benchmark table's shape: the rows render as one Markdown table with a
cell per column, and `bench/run_all.py` at its smallest size prints that table
and writes the same rows as JSON. Figures are never asserted: benchmarks are
not tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.table import COLUMNS, Row, render, unavailable

ROOT = Path(__file__).resolve().parents[2]


def table_lines(text: str) -> list[list[str]]:
    """The cells of each line of the Markdown table in `text`."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def test_a_row_renders_its_figures_with_units_and_the_ratio_of_figure_to_baseline() -> None:
    rows = [Row("web chat, 16 clients: throughput", "turns/s", 2132.4, 6071.0, "3 rounds"),
            Row("idle sockets: memory per socket", "KiB", 17.04, None),
            unavailable("workers", "segue run has no --workers")]

    lines = table_lines(render(rows))

    assert lines[0] == list(COLUMNS)
    assert lines[2] == ["web chat, 16 clients: throughput", "2132 turns/s", "6071 turns/s",
                        "0.35", "3 rounds"]
    assert lines[3] == ["idle sockets: memory per socket", "17.0 KiB", "", "", ""]
    assert lines[4] == ["workers", "", "", "", "not available: segue run has no --workers"]


def test_run_all_at_the_smallest_size_prints_one_table_and_writes_its_rows(
        tmp_path: Path) -> None:
    out = tmp_path / "results.json"

    done = subprocess.run(
        [sys.executable, "bench/run_all.py", "--size", "tiny", "--only", "webchat,history",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)

    assert done.returncode == 0, done.stderr
    lines = table_lines(done.stdout)
    document = json.loads(out.read_text())
    assert lines[0] == list(COLUMNS)
    body = lines[2:]
    assert [line[0] for line in body] == [row["benchmark"] for row in document["rows"]]
    assert all(len(line) == len(COLUMNS) for line in body)
    # Every benchmark ran and gave all its rows, each with a figure and a baseline.
    web, history = "web chat, 2 clients: ", "history 200 entries vs short: "
    assert [line[0] for line in body] == [
        web + "throughput", web + "latency p50", web + "latency p99",
        web + "server CPU per turn",
        history + "throughput", history + "latency p50", history + "latency p99",
        history + "server CPU per turn", history + "reconnect (hello to history)"]
    assert all(row["figure"] is not None and row["baseline"] is not None
               for row in document["rows"]), done.stdout
    assert set(document["machine"]) >= {"cores", "cpu", "python", "redis_server"}
    assert document["machine"]["cores"] >= 1 and document["machine"]["redis_server"]
    assert "Machine: " in done.stdout
