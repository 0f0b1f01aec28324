"""Start-up time of the ``medledger`` command.

    python bench/cli.py           # a line of text
    python bench/cli.py --json    # {"help_s": ..., "version_s": ..., "runs": ...}

Runs ``medledger --help`` and ``medledger --version`` as a shell would (a fresh process each time,
the console script of this venv) and reports the median wall time of each. Target: ``--help`` under
0.3 s. (The test suite checks only that no heavy module loads for ``--help``; times are figures here.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMAND = Path(sys.executable).parent / "medledger"


def median_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(COMMAND), *args], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=21, help="processes per command (default 21)")
    options = parser.parse_args()
    median_seconds(["--help"], 2)  # warm the file cache
    figures = {
        "help_s": median_seconds(["--help"], options.runs),
        "version_s": median_seconds(["--version"], options.runs),
        "runs": options.runs,
    }
    if options.json:
        print(json.dumps(figures))
    else:
        runs = options.runs
        print(f"medledger --help: {figures['help_s']} s, --version: {figures['version_s']} s (median of {runs})")


if __name__ == "__main__":
    main()
