"""Run every benchmark in bench/ and print one JSON document with all their figures.

    python bench/run_all.py [--quick]

Each bench_*.py prints JSON on stdout; results are also written to bench/results/<name>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    results: dict[str, object] = {}
    for script in sorted(HERE.glob("bench_*.py")):
        cmd = [sys.executable, str(script)]
        if args.quick and "--quick" in script.read_text():
            cmd.append("--quick")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        if proc.returncode != 0:
            results[script.stem] = {"error": proc.stderr.strip().splitlines()[-5:]}
            continue
        try:
            results[script.stem] = json.loads(proc.stdout)
        except json.JSONDecodeError:
            results[script.stem] = {"error": "no JSON output", "stdout": proc.stdout[-500:]}
        (out_dir / f"{script.stem}.json").write_text(json.dumps(results[script.stem], indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
