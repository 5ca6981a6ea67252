"""Every benchmark, each in processes of its own, into one table.

Runs each benchmark module (`python -m bench.<module>`), which starts its own
Redis, Segue and baseline server and drives them from its own process, then
prints one table (benchmark, figure, baseline, ratio, notes) with the machine
it ran on, and writes the same as JSON. A benchmark that fails or runs out of
time gets a row saying so; the others still run. bench/README.md says what
each row measures and how to read it.

Usage: python bench/run_all.py [--quick] [--only NAME,...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.table import SIZES, Row, describe_machine, machine, render  # noqa: E402


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str  # for --only
    module: str
    title: str  # the row of a benchmark that produced none


BENCHMARKS = (
    Benchmark("webchat", "bench.webchat_rows", "web chat vs baseline"),
    Benchmark("history", "bench.history", "history independence"),
    Benchmark("idle", "bench.idle_sockets", "idle web chat sockets"),
    Benchmark("telegram", "bench.telegram_webhook", "Telegram webhook"),
    Benchmark("slack", "bench.slack_events", "Slack events"),
    Benchmark("workers", "bench.workers", "workers"),
    Benchmark("cluster", "bench.cluster", "Redis Cluster vs one Redis"),
)
# Each benchmark's time limit, by size: a hung benchmark (a reply that never
# comes) costs this much of a run, which takes 5 to 7 minutes in full on two
# busy cores, and the slowest benchmark (workers) about 2 of them.
TIME_LIMIT_SECONDS = {"full": 300, "quick": 120, "tiny": 90}
STOP_GRACE_SECONDS = 30


def run_one(benchmark: Benchmark, size: str) -> tuple[list[Row], float]:
    """The rows one benchmark module wrote, or one row saying why there are none."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="segue-bench-") as tmp:
        out, err_path = Path(tmp) / "rows.json", Path(tmp) / "stderr"
        with err_path.open("w+b") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", benchmark.module, "--size", size, "--out", str(out)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
            try:
                proc.wait(timeout=TIME_LIMIT_SECONDS[size])
            except subprocess.TimeoutExpired:
                proc.terminate()  # the module stops the servers it started
                try:
                    proc.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                why = f"failed: ran out of its {TIME_LIMIT_SECONDS[size]} s"
                return [Row(benchmark.title, "", None, None, why)], time.monotonic() - began
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or not out.exists():
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            return [Row(benchmark.title, "", None, None, f"failed: {last}")], \
                time.monotonic() - began
        rows = [Row.from_json(r) for r in json.loads(out.read_text())]
    return rows, time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_const", const="quick", dest="size",
                        help="smaller loads and fewer rounds (about 2 minutes)")
    parser.add_argument("--size", choices=sorted(SIZES),
                        help="full (the default, 5 to 7 minutes), quick, or tiny (checks "
                             "the tool only)")
    parser.add_argument("--only", help="comma-separated benchmarks: "
                        + ", ".join(b.name for b in BENCHMARKS))
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results.json",
                        help="where to write the results (default bench/results.json)")
    parser.set_defaults(size="full")
    args = parser.parse_args()
    chosen = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        unknown = sorted(set(names) - {b.name for b in BENCHMARKS})
        if unknown:
            parser.error(f"no benchmark {', '.join(unknown)}")
        chosen = [b for b in BENCHMARKS if b.name in names]

    info = machine()
    began, started_at = time.monotonic(), datetime.now(UTC)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    for benchmark in chosen:
        print(f"running {benchmark.name} ({benchmark.module}) ...", file=sys.stderr, flush=True)
        got, seconds = run_one(benchmark, args.size)
        rows += got
        timings[benchmark.name] = round(seconds, 1)
    elapsed = time.monotonic() - began
    info["load_average_end"] = list(os.getloadavg())

    print(f"Machine: {describe_machine(info)}")
    print(f"Size: {args.size}; {elapsed:.0f} s; ratio = figure / baseline; medians over rounds\n")
    print(render(rows))
    document = {
        "command": " ".join(["python", "bench/run_all.py", *sys.argv[1:]]),
        "size": args.size,
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(elapsed, 1),
        "seconds_per_benchmark": timings,
        "machine": info,
        "rows": [row.to_json() for row in rows],
    }
    args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
