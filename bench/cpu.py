"""CPU time and resident memory of a process and everything it started, read
from /proc (Linux), so a server that forks workers is measured whole.

Only processes alive when read are counted: a worker that exits between two
readings takes its CPU time with it, which a benchmark run never wants to
hide, so the benchmarks read these around runs in which no process exits.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold
    spaces and parentheses), or None for a process that is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by `pid` and its descendants."""
    total = 0
    for member in tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            # utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
            total += int(fields[11]) + int(fields[12])
    return total / TICKS_PER_SECOND


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its descendants, in KiB."""
    total = 0
    for member in tree(pid):
        try:
            status = (PROC / str(member) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                break
    return total
