"""The one table every benchmark reports into: its rows, how big a run is,
the machine it ran on, and the command line each benchmark module runs under.

A benchmark module is run as its own process (`python -m bench.<module>
--size quick --out FILE`) and writes its rows to FILE as JSON; `run_all`
gathers them into one table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COLUMNS = ("benchmark", "figure", "baseline", "ratio", "notes")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much load each benchmark puts on, and how many rounds it takes."""

    name: str
    rounds: int
    messages: int  # per web chat client per round
    clients: tuple[int, ...]  # web chat clients at once, row 1
    scale_clients: int  # web chat clients for the worker and cluster rows
    history_clients: int  # per group, short and long
    history_events: int
    idle_sockets: int
    idle_rounds: int
    senders: int  # Telegram or Slack users writing at once
    updates: int  # per sender per round
    workers: tuple[int, ...]


SIZES = {
    "full": Sizes("full", rounds=5, messages=100, clients=(16, 50), scale_clients=50,
                  history_clients=16, history_events=10_000, idle_sockets=2000, idle_rounds=3,
                  senders=16, updates=50, workers=(1, 2, 4)),
    # Four workers take longer to start than the rest of a quick run's rows.
    "quick": Sizes("quick", rounds=3, messages=20, clients=(16, 50), scale_clients=50,
                   history_clients=8, history_events=10_000, idle_sockets=500, idle_rounds=1,
                   senders=16, updates=12, workers=(1, 2)),
    # The smallest run that still goes through every step: for checking the tool.
    "tiny": Sizes("tiny", rounds=1, messages=4, clients=(2,), scale_clients=2,
                  history_clients=2, history_events=200, idle_sockets=20, idle_rounds=1,
                  senders=2, updates=4, workers=(1, 2)),
}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a figure of Segue's, the same figure of what
    it is compared with, and their ratio (figure / baseline)."""

    benchmark: str
    unit: str
    figure: float | None
    baseline: float | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.baseline:
            return None
        return self.figure / self.baseline

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(data["benchmark"], data["unit"], data["figure"], data["baseline"],
                   data["notes"])


def count(n: int, thing: str) -> str:
    """`n` things, in words: "1 round", "5 rounds", "2,000 sockets"."""
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def unavailable(benchmark: str, why: str) -> Row:
    return Row(benchmark, "", None, None, f"not available: {why}")


def number(value: float) -> str:
    """Three significant figures or so, without exponents."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cells(row: Row) -> tuple[str, str, str, str, str]:
    def with_unit(value: float | None) -> str:
        return "" if value is None else f"{number(value)} {row.unit}".strip()

    ratio = row.ratio
    return (row.benchmark, with_unit(row.figure), with_unit(row.baseline),
            "" if ratio is None else f"{ratio:.2f}", row.notes)


def render(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (readable as it is in a terminal)."""
    lines = [cells(row) for row in rows]
    widths = [max(len(c[i]) for c in [COLUMNS, *lines]) for i in range(len(COLUMNS))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]),
                      *(line(c) for c in lines)])


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for text in cpuinfo:
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    binary = shutil.which("redis-server")
    redis_version = ""
    if binary:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"v=(\S+)", out)
        redis_version = found.group(1) if found else out.strip()
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "redis_server": redis_version, "load_average": list(os.getloadavg())}


def describe_machine(info: dict[str, Any]) -> str:
    def load(key: str) -> str:
        return ", ".join(f"{x:.2f}" for x in info[key])

    said = (f"{info['cores']} cores, {info['cpu']}; Python {info['python']}; "
            f"redis-server {info['redis_server']}; load average at start {load('load_average')}")
    if "load_average_end" in info:
        said += f", at the end {load('load_average_end')}"
    return said


def row_main(run: Callable[[Sizes], list[Row]], description: str | None) -> None:
    """The command line of one benchmark module: run it at a size, print its
    rows, and write them as JSON to --out."""
    # Stopped from outside (run_all's time limit): unwind, so the servers
    # this module started are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", type=Path, help="write the rows here as JSON")
    args = parser.parse_args()
    rows = run(SIZES[args.size])
    print(render(rows))
    if args.out is not None:
        args.out.write_text(json.dumps([row.to_json() for row in rows], indent=2))
