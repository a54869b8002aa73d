"""Start-up time of the CLI: `fsgen --help` and `fsgen validate` on the example project.

Target (issue: foundation): `fsgen --help` under 0.3 s. Prints JSON. Baseline in the same run:
a bare `python -c pass`, so interpreter start-up is visible separately.

    python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def measure(cmd: list[str], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - start)
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    fsgen = [sys.executable, "-m", "fsgen.cli"]
    results = {
        "benchmark": "cli_startup",
        "runs": args.runs,
        "baseline_python_pass": measure([sys.executable, "-c", "pass"], args.runs),
        "fsgen_help": measure([*fsgen, "--help"], args.runs),
        "fsgen_validate_example": measure([*fsgen, "validate"], args.runs),
        "target_help_s": 0.3,
    }
    results["help_meets_target"] = results["fsgen_help"]["median_s"] < 0.3
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
