#!/usr/bin/env python3
"""Before and after on one machine: run the same bench command in two checkouts in turn (A, B, A,
B, ...), pull each run's figure out of its output, and print the medians and B/A.

  python3 bench/compare.py --before /work/base --after . --runs 3 udp tcp miss flood api events propagation

Each checkout runs its own bench/ script, so each measures its own code. The machine is shared
and noisy: alternating the two keeps slow moments from landing on one side only. A figure where
lower is better (latencies) is marked so; "worse" means the after side is more than 3% worse."""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    argv: tuple[str, ...]  # the bench command, relative to a checkout
    pattern: str  # a regex whose group 1 is the figure
    unit: str
    lower_is_better: bool = False


FIGURES = {
    "udp": Figure(("bench/qps.py", "--rounds", "3", "--seconds", "6"), r"NSD\s+\d+ qps\s+minidns = ([\d.]+)x", "x NSD"),
    "tcp": Figure(("bench/qps.py", "--tcp", "--rounds", "3", "--seconds", "6"), r"NSD\s+\d+ qps\s+minidns = ([\d.]+)x", "x NSD"),
    "miss": Figure(("bench/qps.py", "--no-cache", "--rounds", "3", "--seconds", "6"),
                   r"NSD\s+\d+ qps\s+minidns = ([\d.]+)x", "x NSD"),
    "flood": Figure(("bench/dnssec.py", "--flood"), r"signed replies/s\s+(\d+)", "replies/s"),
    "api": Figure(("bench/api.py", "--seconds", "10", "--list", "0"), r"created in [\d.]+s: (\d+)/s", "creates/s"),
    "events": Figure(("bench/events.py",), r"accepted -> A answered \(ms\): .*p99 ([\d.]+)", "ms p99", True),
    "propagation": Figure(("bench/propagation.py",), r"commit -> answered \(ms\): .*p99 ([\d.]+)", "ms p99", True),
}


def run_once(checkout: Path, fig: Figure) -> float | None:
    r = subprocess.run([sys.executable, *fig.argv], cwd=checkout, capture_output=True, text=True)
    m = re.search(fig.pattern, r.stdout)
    if m is None:
        print(f"  {checkout}: no figure (status {r.returncode})\n{r.stdout[-1500:]}{r.stderr[-1500:]}", flush=True)
        return None
    return float(m.group(1))


def compare(name: str, fig: Figure, before: Path, after: Path, runs: int) -> str:
    seen: dict[str, list[float]] = {"before": [], "after": []}
    for i in range(runs):
        for side, checkout in (("before", before), ("after", after)):
            value = run_once(checkout, fig)
            print(f"  {name} run {i + 1} {side}: {value}", flush=True)
            if value is not None:
                seen[side].append(value)
    if not seen["before"] or not seen["after"]:
        return f"{name:12s} no figure"
    b, a = statistics.median(seen["before"]), statistics.median(seen["after"])
    change = (b / a if fig.lower_is_better else a / b) if a and b else float("nan")
    verdict = "worse by more than 3%" if change < 0.97 else "within 3% or better"
    return f"{name:12s} before {b:10.2f}  after {a:10.2f} {fig.unit:10s} after/before {change:5.3f} ({verdict})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="checkout measured first in each pair")
    ap.add_argument("--after", type=Path, default=Path("."), help="checkout measured second (default: this one)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("figures", nargs="+", choices=sorted(FIGURES))
    a = ap.parse_args()
    lines = [compare(name, FIGURES[name], a.before.resolve(), a.after.resolve(), a.runs) for name in a.figures]
    print("\n=== medians of %d runs each, alternating (after/before > 1 is better) ===" % a.runs)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
