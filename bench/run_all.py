"""Run every benchmark in bench/ and print one JSON document with all their figures; regenerate
the README's performance table from them.

    python bench/run_all.py [--quick] [--only NAME ...] [--readme]
    python bench/run_all.py --readme-only        # the table from bench/results/*.json as is
    python bench/run_all.py --merge bench_pit a.json b.json   # one results file of several runs

Each bench_*.py prints JSON on stdout; results are also written to bench/results/<name>.json.
``--merge NAME FILE...`` writes bench/results/<NAME>.json from several runs of one bench (the
point-in-time shapes measured separately, e.g. ``--big --only wide`` and ``--only deep``): the
first run's document with every run's ``shapes`` in order, each shape keeping its own load
average and repetitions. A benchmark without a results file keeps its current README rows, and
a point-in-time shape the results do not hold keeps its row.

``--readme`` rewrites the table between ``<!-- bench-table:start -->`` and
``<!-- bench-table:end -->`` in README.md from those files (point-in-time and ingest figures:
wall and CPU seconds, peak memory, ratios to the same-run baselines, the load average).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def run(quick: bool, only: list[str] | None) -> dict[str, object]:
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    results: dict[str, object] = {}
    for script in sorted(HERE.glob("bench_*.py")):
        if only and script.stem not in only:
            continue
        cmd = [sys.executable, str(script)]
        if quick and "--quick" in script.read_text():
            cmd.append("--quick")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, check=False)
        if proc.returncode != 0:
            results[script.stem] = {"error": proc.stderr.strip().splitlines()[-5:]}
            continue
        try:
            results[script.stem] = json.loads(proc.stdout)
        except json.JSONDecodeError:
            results[script.stem] = {"error": "no JSON output", "stdout": proc.stdout[-500:]}
        (out_dir / f"{script.stem}.json").write_text(json.dumps(results[script.stem], indent=2))
    return results


def _load(name: str) -> dict | None:  # type: ignore[type-arg]
    path = HERE / "results" / f"{name}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return None if "error" in data else data


def _fig(run: dict, memory: bool = True) -> str:  # type: ignore[type-arg]
    text = f"{run['wall_s']:.2f} s wall, {run['cpu_s']:.2f} CPU-s"
    return text + (f", {run['peak_rss_mib']:.0f} MiB peak" if memory else "")


def _shape_label(r: dict) -> str:  # type: ignore[type-arg]
    return (
        f"{r['shape']}: {r['feature_rows']:,} rows, {r['rows_per_entity']:,} per entity, "
        f"{r['labels']:,}"
    )


def merge(name: str, files: list[str]) -> None:
    """bench/results/<name>.json from several runs' JSON documents (see the module doc)."""
    docs = [json.loads(Path(f).read_text()) for f in files]
    merged = dict(docs[0])
    merged["shapes"] = [
        {**shape, "repeat": shape.get("repeat", doc["repeat"])}
        for doc in docs
        for shape in doc["shapes"]
    ]
    merged["within_target"] = all(doc["within_target"] for doc in docs)
    merged["load_average"] = [shape["load_average"] for shape in merged["shapes"]]
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(merged, indent=2))


def table(previous: list[str] | None = None) -> str:
    """The README table from bench/results/*.json; ``previous`` (the table's current lines)
    gives the rows of a benchmark that has no results file."""

    def kept(prefix: str) -> list[str]:
        return [line for line in previous or [] if line.startswith(prefix)]

    lines = [
        "| benchmark | fsgen | best hand-written baseline, same run | ratio (CPU; wall; peak "
        "memory) | load average (1 min, before / after) | target |",
        "|---|---|---|---|---|---|",
    ]
    pit = _load("bench_pit")
    if pit:
        measured = {_shape_label(r) for r in pit["shapes"]}
        # a shape this results file did not measure keeps its current row
        lines += [
            line
            for line in kept("| PIT ")
            if line.split(" labels (", 1)[0].removeprefix("| PIT ") not in measured
        ]
        for r in pit["shapes"]:
            load = r.get("load_average", pit["load_average"])
            best = r[r["best_hand_written"]]
            other = "asof" if r["best_hand_written"] == "window" else "window"
            others = f"; {other}: {_fig(r[other], False)}" if other in r else ""
            first = r["fsgen_first_run"]
            compacted = ""
            if "fsgen-compacted" in r:
                files = r["files_read"]
                compacted = (
                    f"; after compaction, {files['compacted']:,} file(s) read instead of "
                    f"{files['published']:,}: {_fig(r['fsgen-compacted'], False)} "
                    f"({r['ratio_cpu_compacted']:.2f}x; {r['ratio_wall_compacted']:.2f}x; "
                    f"{r['ratio_peak_rss_compacted']:.2f}x; first run "
                    f"{r['fsgen_compacted_first_run']['cpu_s']:.2f} CPU-s)"
                )
            met = r["ratio_cpu"] <= 1.1 and r["ratio_wall"] <= 1.1
            lines.append(
                f"| PIT {_shape_label(r)} labels (median of {r.get('repeat', pit['repeat'])}) "
                f"| {_fig(r['fsgen'])} (first run, writing the history cache: "
                f"{first['cpu_s']:.2f} CPU-s){compacted} "
                f"| {r['best_hand_written']}: {_fig(best)}{others}; single-file floor: "
                f"{_fig(r[r['floor']], False)} "
                f"| {r['ratio_cpu']:.2f}x; {r['ratio_wall']:.2f}x; {r['ratio_peak_rss']:.2f}x "
                f"| {load[0]:.1f} / {load[3]:.1f} "
                f"| <= 1.1x: {'met' if met else 'not met'} |"
            )
    else:
        lines += kept("| PIT ")
    ingest = _load("bench_ingest")
    if ingest and "baseline_duckdb_script" in ingest:
        f, d = ingest["fsgen"], ingest["baseline_duckdb_script"]
        m = ingest["machine"]
        ratio = ingest["cpu_ratio_to_duckdb_script"]
        job = ingest.get("generated_batch_job")
        cmd = ingest.get("fsgen_ingest_command")
        batch = (
            f"; generated batch job: {job['seconds']:.2f} s wall, {job['cpu_seconds']:.2f} "
            "CPU-s (start-up included)"
            if job
            else ""
        )
        command = (
            f"; the `fsgen ingest` command: {cmd['seconds']:.2f} s wall, "
            f"{cmd['cpu_seconds']:.2f} CPU-s (start-up included)"
            if cmd
            else ""
        )
        lines.append(
            f"| `fsgen ingest` {ingest['rows']:,} CSV rows, 5 features, offline + online "
            f"(in process: `LocalStore.ingest`) "
            f"| {f['seconds']:.2f} s wall, {f['cpu_seconds']:.2f} CPU-s{command}{batch} "
            f"| plain DuckDB script: {d['seconds']:.2f} s wall, {d['cpu_seconds']:.2f} CPU-s "
            f"| {ratio:.2f}x; {f['seconds'] / d['seconds']:.2f}x; - "
            f"| {m['load_average_1m_before']:.1f} / {m['load_average_1m_after']:.1f} "
            f"| CPU <= 2x: {'met' if ratio <= 2 else 'not met'} |"
        )
    else:
        lines += kept("| `fsgen ingest` ")
    return "\n".join(lines)


def write_readme() -> None:
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    current, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table(current.strip().splitlines())}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", action="append", help="bench_<name> to run (repeatable)")
    parser.add_argument("--readme", action="store_true", help="regenerate the README table")
    parser.add_argument("--readme-only", action="store_true", help="only regenerate the table")
    parser.add_argument(
        "--merge", nargs="+", metavar="ARG", help="NAME FILE...: one results file of several runs"
    )
    args = parser.parse_args()
    if args.merge:
        merge(args.merge[0], args.merge[1:])
        return
    if not args.readme_only:
        print(json.dumps(run(args.quick, args.only), indent=2))
    if args.readme or args.readme_only:
        write_readme()


if __name__ == "__main__":
    main()
