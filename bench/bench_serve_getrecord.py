"""GetRecord latency through boto3 against ``fsgen serve`` on loopback, against an HTTP floor,
and the same lookup in process (LocalStore.get_record + encoding to SageMaker's Record shape),
in the same run.

    python bench/bench_serve_getrecord.py [--quick] [--calls N]

The floor is the least a server on the same stack can do: the standard library's
``ThreadingHTTPServer`` answering ``GET /FeatureGroup/<name>`` with one primary-key SELECT on
the same SQLite online store and the same JSON body (checked byte for byte on every stored
record before timing), without SigV4 checks, validation, TTL or routing. Both servers run in
their own process (as a user would run them), so client and server do not share a GIL, and the
two are measured interleaved (A B A B, in rounds of the same calls), with boto3 and with a raw
``http.client`` connection. Target: p99 under 2 ms over HTTP. Prints JSON.
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
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(
                url + "/FeatureGroup/x?RecordIdentifierValueAsString=1", timeout=1
            ).read()
            return  # it answered (the floor: an empty record)
        except urllib.error.HTTPError:
            return  # it answered (404 ResourceNotFound): ready
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def serve_floor(port: int, database: str, group: str, features: str) -> None:
    """The HTTP floor (run as ``--floor-server``): stdlib server, one SELECT, the same JSON."""
    import sqlite3
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    names = json.loads(features)  # [[column, kind], ...] in the group's order
    table = '"' + f"fg:{group}".replace('"', '""') + '"'
    columns = ", ".join('"' + n.replace('"', '""') + '"' for n, _ in names)
    sql = f"SELECT {columns} FROM {table} WHERE _record_id = ? AND _deleted = 0"
    local = threading.local()

    def encode(kind: str, value: object) -> str:
        return repr(float(value)) if kind == "Fractional" else str(value)  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes

        def do_GET(self) -> None:
            con = getattr(local, "con", None)
            if con is None:
                con = local.con = sqlite3.connect(database, check_same_thread=False)
            url = urllib.parse.urlsplit(self.path)
            record_id = urllib.parse.parse_qs(url.query)["RecordIdentifierValueAsString"][0]
            row = con.execute(sql, (record_id,)).fetchone()
            record = (
                [
                    {"FeatureName": n, "ValueAsString": encode(k, v)}
                    for (n, k), v in zip(names, row, strict=True)
                    if v is not None
                ]
                if row
                else None
            )
            body = json.dumps({"Record": record} if record else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    if sys.argv[1:2] == ["--floor-server"]:
        port, database, group, features = sys.argv[2:6]
        serve_floor(int(port), database, group, features)
        return
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

        port, floor_port = free_port(), free_port()
        url, floor_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
        features = json.dumps([[n, kind] for n, kind, coll, _ in rt.columns if not coll])
        floor_args = [str(store.online.path), group.name, features]
        serve_args = ["serve", "--port", str(port)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "fsgen.cli", "--project", str(work), *serve_args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [sys.executable, __file__, "--floor-server", str(floor_port), *floor_args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            wait_ready(url, procs[0])
            wait_ready(floor_url, procs[1])
            clients = {
                side: boto3.client(
                    "sagemaker-featurestore-runtime",
                    endpoint_url=where,
                    config=Config(retries={"max_attempts": 1}),
                )
                for side, where in (("fsgen", url), ("floor", floor_url))
            }
            import http.client

            conns = {
                side: http.client.HTTPConnection("127.0.0.1", p)
                for side, p in (("fsgen", port), ("floor", floor_port))
            }

            def raw(side: str, cid: str) -> bytes:
                conns[side].request(
                    "GET",
                    f"/FeatureGroup/{group.name}?RecordIdentifierValueAsString={cid}",
                    headers={"Authorization": SIGV4_SHAPED},
                )
                return conns[side].getresponse().read()

            same = all(
                json.loads(raw("fsgen", cid)) == json.loads(raw("floor", cid)) for cid in ids
            )
            if not same:
                raise SystemExit("the floor's JSON differs from fsgen serve's")
            rng = random.Random(7)
            sample = [rng.choice(ids) for _ in range(calls)]
            for side in clients:  # warm-up: connections, caches
                for cid in sample[:200]:
                    clients[side].get_record(
                        FeatureGroupName=group.name, RecordIdentifierValueAsString=cid
                    )
            load_before = os.getloadavg()[0]
            timings: dict[str, list[int]] = {
                f"{side}_{how}": [] for side in clients for how in ("boto3", "raw")
            }
            misses = 0
            rounds = 4
            step = -(-len(sample) // rounds)
            for r in range(rounds):  # A B A B: each side gets the same calls in every round
                part = sample[r * step : (r + 1) * step]
                for side in ("fsgen", "floor"):
                    client, ns = clients[side], timings[f"{side}_boto3"]
                    for cid in part:
                        t0 = time.perf_counter_ns()
                        out = client.get_record(
                            FeatureGroupName=group.name, RecordIdentifierValueAsString=cid
                        )
                        ns.append(time.perf_counter_ns() - t0)
                        misses += "Record" not in out
                for side in ("fsgen", "floor"):
                    ns = timings[f"{side}_raw"]
                    # a fresh keep-alive connection per round (a server may close an idle
                    # one), opened by an untimed first call
                    conns[side].close()
                    raw(side, part[0])
                    for cid in part:
                        t0 = time.perf_counter_ns()
                        raw(side, cid)
                        ns.append(time.perf_counter_ns() - t0)
            for conn in conns.values():
                conn.close()
            load_after = os.getloadavg()[0]
        finally:
            for proc in procs:
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

    http = percentiles(timings["fsgen_boto3"])
    floor = percentiles(timings["floor_boto3"])
    raw_fsgen, raw_floor = percentiles(timings["fsgen_raw"]), percentiles(timings["floor_raw"])
    result = {
        "benchmark": "GetRecord via boto3 against fsgen serve (loopback) vs an HTTP floor and in "
        "process",
        "records_stored": args.records,
        "http_boto3": http,
        "http_raw_client": raw_fsgen,
        "floor_http_boto3": floor,
        "floor_http_raw_client": raw_floor,
        "floor": "stdlib ThreadingHTTPServer + one SQLite primary-key SELECT, same JSON body",
        "ratio_to_floor": {
            "boto3_p50": round(http["p50_ms"] / floor["p50_ms"], 3),
            "boto3_p99": round(http["p99_ms"] / floor["p99_ms"], 3),
            "raw_p50": round(raw_fsgen["p50_ms"] / raw_floor["p50_ms"], 3),
            "raw_p99": round(raw_fsgen["p99_ms"] / raw_floor["p99_ms"], 3),
        },
        "interleaved_rounds": rounds,
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
