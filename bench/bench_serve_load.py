"""Load check of ``fsgen serve``: 8 concurrent boto3 clients doing GetRecord and PutRecord
(alternately, random records) for 10 s against the ``fsgen serve`` process on loopback, with
latency percentiles per operation and the error count (expected 0); then the same mix from 8
threads calling the server's runtime service in process (no HTTP, no boto3) on the same store,
as the same-run baseline.

    python bench/bench_serve_load.py [--quick] [--seconds S] [--clients N]

The group is created through the API (CreateFeatureGroup), as a SageMaker user's would be.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_serve_getrecord import free_port, wait_ready
from benchlib import percentiles

REPO = Path(__file__).resolve().parent.parent
GROUP = "load-features"
DEFS = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "t", "FeatureType": "String"},
    {"FeatureName": "n", "FeatureType": "Integral"},
    {"FeatureName": "x", "FeatureType": "Fractional"},
]


def record(rid: str, n: int) -> list[dict[str, str]]:
    return [
        {"FeatureName": "id", "ValueAsString": rid},
        {"FeatureName": "t", "ValueAsString": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        {"FeatureName": "n", "ValueAsString": str(n)},
        {"FeatureName": "x", "ValueAsString": repr(n / 7)},
    ]


def run_load(
    make_call: Callable[[int], Callable[[str, dict[str, Any]], dict[str, Any]]],
    ids: list[str],
    clients: int,
    seconds: float,
) -> dict[str, Any]:
    """``clients`` threads, each with its own caller, alternating GetRecord / PutRecord until
    ``seconds`` pass; every exception and every missing record counts as an error."""
    samples: dict[str, list[int]] = {"GetRecord": [], "PutRecord": []}
    errors: list[str] = []
    lock = threading.Lock()
    callers = [make_call(i) for i in range(clients)]
    start = threading.Barrier(clients + 1)

    def work(worker: int) -> None:
        call = callers[worker]
        rng = random.Random(worker)
        mine: dict[str, list[int]] = {"GetRecord": [], "PutRecord": []}
        failed: list[str] = []
        start.wait()
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            rid = rng.choice(ids)
            op = "GetRecord" if i % 2 == 0 else "PutRecord"
            request: dict[str, Any] = {"FeatureGroupName": GROUP}
            if op == "GetRecord":
                request["RecordIdentifierValueAsString"] = rid
            else:
                request["Record"] = record(rid, i)
            t0 = time.perf_counter_ns()
            try:
                out = call(op, request)
                if op == "GetRecord" and "Record" not in out:
                    failed.append(f"GetRecord {rid}: no record")
            except Exception as exc:
                failed.append(f"{op}: {type(exc).__name__}: {exc}"[:200])
            mine[op].append(time.perf_counter_ns() - t0)
            i += 1
        with lock:
            for key, values in mine.items():
                samples[key].extend(values)
            errors.extend(failed)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    calls = sum(len(v) for v in samples.values())
    return {
        "GetRecord": percentiles(samples["GetRecord"]),
        "PutRecord": percentiles(samples["PutRecord"]),
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 s per phase instead of 10")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        os.environ[key] = value

    import boto3
    from botocore.config import Config

    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.server import make_server

    work = Path(tempfile.mkdtemp(prefix="fsgen-bench-load-"))
    try:
        shutil.copytree(
            REPO / "featuredefs", work / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fsgen.cli",
                "--project",
                str(work),
                "serve",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ids = [f"r-{i:06d}" for i in range(args.records)]
        config = Config(retries={"max_attempts": 1}, max_pool_connections=2)
        try:
            wait_ready(url, proc)
            sm = boto3.client("sagemaker", endpoint_url=url)
            sm.create_feature_group(
                FeatureGroupName=GROUP,
                RecordIdentifierFeatureName="id",
                EventTimeFeatureName="t",
                FeatureDefinitions=DEFS,
                OnlineStoreConfig={"EnableOnlineStore": True},
            )
            rt = boto3.client("sagemaker-featurestore-runtime", endpoint_url=url, config=config)
            for start in range(0, len(ids), 25):
                rt.batch_write_record(
                    Entries=[
                        {"FeatureGroupName": GROUP, "Record": record(rid, 0)}
                        for rid in ids[start : start + 25]
                    ]
                )

            def boto_caller(_: int) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
                client = boto3.session.Session().client(
                    "sagemaker-featurestore-runtime", endpoint_url=url, config=config
                )
                methods = {"GetRecord": client.get_record, "PutRecord": client.put_record}
                return lambda op, request: methods[op](**request)  # type: ignore[no-any-return]

            load_before = os.getloadavg()[0]
            http = run_load(boto_caller, ids, args.clients, seconds)
            load_after = os.getloadavg()[0]
        finally:
            proc.terminate()
            proc.wait(timeout=30)

        server = make_server(load_config(work), load(work), port=0)
        try:
            service = server.runtime

            def local_caller(_: int) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
                return service.call

            local = run_load(local_caller, ids, args.clients, seconds)
        finally:
            server.server_close()
            server.runtime.store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": (
            f"{args.clients} concurrent clients, GetRecord/PutRecord alternately for {seconds:g} s"
        ),
        "records": args.records,
        "http_boto3_fsgen_serve": http,
        "in_process_baseline": local,
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
        "errors": http["errors"] + local["errors"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
