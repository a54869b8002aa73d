"""Benchmark: the generated Spark job (``fsgen ingest GROUP PATH --engine spark``: the job on
``local[2]``, then the commits into the local store) against ``fsgen ingest`` (this process
plus its transform workers) on the same CSV, measured in the same run, at each ``--rows``.

    python bench/bench_ingest_spark.py [--rows 1000000 10000000 | --quick]

Prints one JSON object: per size and engine wall seconds, rows/s, CPU seconds of the whole
process tree (the command, its workers; for Spark the JVM and its Python workers), the peak
resident memory of that tree (sampled every 0.2 s) and the load average around the run (the
machine is shared: wall time depends on what else runs, CPU seconds much less). The
``per_core_rows_per_s`` figure (rows per CPU second) is what the README's Glue estimate uses.
The group is bench/bench_ingest.py's (five features).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import make_csv, make_project

GROUP = "account-activity"


class TreeSampler:
    """CPU seconds and peak RSS (bytes) of a process and all its descendants."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
                except psutil.NoSuchProcess:
                    continue
            self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def stop(self) -> tuple[float, int]:
        self._stop.set()
        self._thread.join()
        return sum(self.cpu.values()), self.peak


def run(root: Path, src: Path, engine: str) -> dict[str, object]:
    shutil.rmtree(root / ".fsgen", ignore_errors=True)
    fsgen = str(Path(sys.executable).with_name("fsgen"))
    subprocess.run(
        [fsgen, "--project", str(root), "apply", "--auto-approve"], check=True, capture_output=True
    )
    env = {**os.environ, "FSGEN_SPARK_MASTER": "local[2]"}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [fsgen, "--project", str(root), "ingest", GROUP, str(src), "--engine", engine, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    sampler = TreeSampler(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    cpu, peak = sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{engine}: exit {proc.returncode}: {err[-2000:]}")
    result = json.loads(out)
    rows = int(result["read"])
    return {
        "rows": rows,
        "written": result["written"],
        "wall_s": round(wall, 2),
        "rows_per_s": round(rows / wall),
        "cpu_s": round(cpu, 2),
        "per_core_rows_per_s": round(rows / cpu) if cpu else None,
        "peak_rss_mb": round(peak / 2**20),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--quick", action="store_true", help="100,000 rows only")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else args.rows
    report: dict[str, object] = {
        "benchmark": "ingest_spark",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="fsgen-bench-spark-") as tmp:
        root = make_project(Path(tmp) / "project")
        subprocess.run(
            [str(Path(sys.executable).with_name("fsgen")), "--project", str(root), "generate"],
            check=True,
            capture_output=True,
        )
        for n in sizes:
            src = Path(tmp) / f"rows-{n}.csv"
            make_csv(src, n)
            entry = {engine: run(root, src, engine) for engine in ("local", "spark")}
            local, spark = entry["local"], entry["spark"]
            entry["spark_vs_local_wall"] = round(spark["wall_s"] / local["wall_s"], 2)  # type: ignore[operator]
            report["sizes"][str(n)] = entry  # type: ignore[index]
            print(json.dumps({str(n): entry}), file=sys.stderr, flush=True)
            src.unlink()
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
