"""Benchmark: `fsgen generate` for a project of 100 feature groups x 100 features.

    python bench/bench_generate.py [--quick] [--groups N] [--features M]

Prints JSON: the time to load the definitions (import + hashing, reported separately), the
time to build every artifact in memory, the time for a full first write of generated/ and
for a no-change second run (what CI's `--check` costs). Baseline measured in the same run:
writing the same bytes with plain file writes, i.e. the floor for the write step.
Target: generation (build + write) under 5 s for 100 x 100. Wall time depends on what else the
machine runs, so the process's CPU time and the load average are reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def make_project(root: Path, groups: int, features: int) -> None:
    (root / "benchdefs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.fsgen]\ndefinitions = "benchdefs"\ngenerated_dir = "generated"\n\n'
        '[tool.fsgen.aws]\nrole_arn = "arn:aws:iam::123456789012:role/bench"\n'
        'offline_s3_uri = "s3://bench-bucket/offline"\n'
    )
    (root / "benchdefs/__init__.py").write_text('"""Benchmark definitions."""\n')
    for g in range(groups):
        lines = [
            f'"""Group {g}."""',
            "from fsgen import Entity, FeatureGroup, Fractional, Online, String",
            f'entity_{g} = Entity("key_{g}", String, description="Entity {g}")',
            f'group_{g} = FeatureGroup("group-{g:03d}", entity=entity_{g}, event_time="ts",',
            '    online=Online(ttl="7d"), owner="bench", description="Benchmark group")',
        ]
        for f in range(features):
            lines += [
                f'@group_{g}.feature(Fractional, description="Feature {f}")',
                f"def g{g}_f{f}(raw_{f % 10}: float) -> float:",
                f"    return raw_{f % 10} * {f + 1}",
            ]
        (root / f"benchdefs/group_{g:03d}.py").write_text("\n".join(lines) + "\n")
    names = ", ".join(f'"group-{g:03d}:g{g}_f0"' for g in range(min(groups, 50)))
    (root / "benchdefs/sets.py").write_text(
        "from fsgen import FeatureSet\n"
        f'model = FeatureSet("bench-model", [{names}], description="Bench", owner="bench")\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10 x 10 instead of 100 x 100")
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--features", type=int, default=100)
    args = parser.parse_args()
    groups, features = (10, 10) if args.quick else (args.groups, args.features)

    from fsgen.codegen import build, generate
    from fsgen.loader import load_with_config

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        make_project(root, groups, features)
        t0 = time.perf_counter()
        config, spec = load_with_config(root)
        load_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        artifacts = build(config, spec)
        build_s = time.perf_counter() - t0

        t0, c0 = time.perf_counter(), time.process_time()
        first = generate(config, spec)
        generate_s = time.perf_counter() - t0
        generate_cpu_s = time.process_time() - c0

        t0 = time.perf_counter()
        second = generate(config, spec)
        regenerate_s = time.perf_counter() - t0

        baseline_dir = Path(tmp) / "baseline"
        t0 = time.perf_counter()
        for a in artifacts:
            target = baseline_dir / a.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(a.content.encode("utf-8"))
        baseline_s = time.perf_counter() - t0
        total_bytes = sum(len(a.content.encode("utf-8")) for a in artifacts)
        shutil.rmtree(baseline_dir)

    print(
        json.dumps(
            {
                "benchmark": "generate",
                "groups": groups,
                "features_per_group": features,
                "artifacts": len(artifacts),
                "bytes": total_bytes,
                "load_definitions_s": round(load_s, 3),
                "build_in_memory_s": round(build_s, 3),
                "generate_first_write_s": round(generate_s, 3),
                "generate_first_write_cpu_s": round(generate_cpu_s, 3),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "generate_no_change_s": round(regenerate_s, 3),
                "baseline_plain_write_s": round(baseline_s, 3),
                "target_s": 5.0,
                "within_target": generate_s < 5.0,
                "within_target_cpu": generate_cpu_s < 5.0,
                "written": len(first.created),
                "unchanged_second_run": len(second.unchanged),
                "python": sys.version.split()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
