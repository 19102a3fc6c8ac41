"""`mixaq <command> --help` wall time of every command vs a bare `python -c "import numpy"`.

Help and argument errors must come back before torch is imported (goal: <= 3x the bare numpy
import). Medians of 7 runs, measured in this one run, on this machine.

    python -m benchmarks.bench_cli
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = 3.0


def wall_seconds(argv: list[str], repeat: int = 7) -> float:
    """Median wall time of running `argv` `repeat` times (output discarded). Bytecode is written and
    read as an installed package's is (a PYTHONDONTWRITEBYTECODE in the caller's environment would
    make every run compile every module from source: +0.05 s on `mixaq cost`)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=REPO, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from mixaq.search.cli import COMMANDS

    script = Path(sys.executable).parent / "mixaq"  # the installed console script, as users run it
    mixaq = [str(script)] if script.exists() else [sys.executable, "-m", "mixaq.search.cli"]
    wall_seconds([*mixaq, "eval", "--help"], 1)  # warm the page cache
    numpy_s = wall_seconds([sys.executable, "-c", "import numpy"])
    print(f"bare `python -c 'import numpy'`: {numpy_s:.3f} s (median of 7)")
    print(f"{'command':<22} {'wall s':>7} {'ratio':>6}")
    worst = 0.0
    for name in COMMANDS:
        seconds = wall_seconds([*mixaq, name, "--help"])
        worst = max(worst, seconds / numpy_s)
        print(f"{'mixaq ' + name + ' --help':<22} {seconds:7.3f} {seconds / numpy_s:5.2f}x")
    print(f"slowest --help: {worst:.2f}x a bare numpy import (goal <= {GOAL_RATIO:.0f}x)")


if __name__ == "__main__":
    main()
