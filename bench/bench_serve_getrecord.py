"""GetRecord latency through boto3 against ``fsgen serve`` on loopback, and the same lookup in
process (LocalStore.get_record + encoding to SageMaker's Record shape) in the same run.

    python bench/bench_serve_getrecord.py [--quick] [--calls N]

The server runs in its own process (as a user would run it), so client and server do not
share a GIL. Target: p99 under 2 ms over HTTP. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import percentiles

REPO = Path(__file__).resolve().parent.parent
# fsgen serve takes only SigV4-shaped requests (it does not verify the signature)
SIGV4_SHAPED = (
    "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host, Signature=" + "0" * 64
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"fsgen serve exited with {proc.returncode}")
        try:
            urllib.request.urlopen(
                url + "/FeatureGroup/x?RecordIdentifierValueAsString=1", timeout=1
            )
        except urllib.error.HTTPError:
            return  # it answered (404 ResourceNotFound): ready
        except OSError:
            time.sleep(0.1)
    raise SystemExit("fsgen serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 calls instead of 10,000")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    calls = args.calls or (1000 if args.quick else 10_000)

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

    from fsgen.backends.local import LocalBackend
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.plan.apply import apply_plan, compute_plan
    from fsgen.store import LocalStore

    work = Path(tempfile.mkdtemp(prefix="fsgen-bench-serve-"))
    try:
        shutil.copytree(
            REPO / "featuredefs", work / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
        config = load_config(work)
        spec = load(work)
        backend = LocalBackend(config)
        apply_plan(
            config,
            spec,
            backend,
            compute_plan(config, spec, backend, artifacts=False),
            regenerate=False,
        )
        group = spec.group("customer-features")
        store = LocalStore.open(config, spec)
        rt = store.runtime(group.name)
        ids = [f"cust-{i:06d}" for i in range(args.records)]
        store.put_records(
            group.name,
            [
                {
                    "customer_id": cid,
                    "last_updated_time": "2099-01-01T00:00:00Z",
                    "age": 30 + i % 50,
                    "avg_monthly_spend": 12.5 + i,
                    "is_prime_member": i % 2,
                }
                for i, cid in enumerate(ids)
            ],
        )

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
        try:
            wait_ready(url, proc)
            client = boto3.client(
                "sagemaker-featurestore-runtime",
                endpoint_url=url,
                config=Config(retries={"max_attempts": 1}),
            )
            rng = random.Random(7)
            sample = [rng.choice(ids) for _ in range(calls)]
            for cid in sample[:200]:  # warm-up: connections, caches
                client.get_record(FeatureGroupName=group.name, RecordIdentifierValueAsString=cid)
            load_before = os.getloadavg()[0]
            http_ns: list[int] = []
            misses = 0
            for cid in sample:
                t0 = time.perf_counter_ns()
                out = client.get_record(
                    FeatureGroupName=group.name, RecordIdentifierValueAsString=cid
                )
                http_ns.append(time.perf_counter_ns() - t0)
                misses += "Record" not in out
            # the server's share: the same GET without boto3 (no signing, no parsing)
            import http.client

            conn = http.client.HTTPConnection("127.0.0.1", port)
            raw_ns: list[int] = []
            for cid in sample:
                t0 = time.perf_counter_ns()
                conn.request(
                    "GET",
                    f"/FeatureGroup/{group.name}?RecordIdentifierValueAsString={cid}",
                    headers={"Authorization": SIGV4_SHAPED},
                )
                conn.getresponse().read()
                raw_ns.append(time.perf_counter_ns() - t0)
            conn.close()
            load_after = os.getloadavg()[0]
        finally:
            proc.terminate()
            proc.wait(timeout=10)

        local_ns: list[int] = []
        for cid in sample:
            t0 = time.perf_counter_ns()
            record = store.get_record(group.name, cid)
            rt.to_sagemaker(record or {})
            local_ns.append(time.perf_counter_ns() - t0)
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    http = percentiles(http_ns)
    result = {
        "benchmark": "GetRecord via boto3 against fsgen serve (loopback) vs in process",
        "records_stored": args.records,
        "http_boto3": http,
        "http_raw_client": percentiles(raw_ns),
        "in_process_baseline": percentiles(local_ns),
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
        "misses": misses,
        "target_p99_ms": 2.0,
        "meets_target": http["p99_ms"] < 2.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
