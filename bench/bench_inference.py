"""Latency and throughput of ``POST /invocations`` (``fsgen serve-model``) on loopback with a
one-entity request -- the BatchGetRecord feature lookup over the local online store, the
vector built by the generated parser, the on-demand feature and the model -- and, in the same
run, the baseline: the same handler called in process without HTTP.

    python bench/bench_inference.py [--quick] [--calls N]

The server runs in its own process, as a user would run it; one client on a keep-alive
connection sends requests back to back: a client writing each request in one write (the
headline figure), then Python's http.client, which writes headers and body separately (the
server then waits for a second packet). Target: p99 under 5 ms over HTTP. Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchlib import percentiles

REPO = Path(__file__).resolve().parent.parent
FEATURE_SET = "fraud-model"
TARGET_P99_MS = 5.0


def latency(samples_ns: list[int]) -> dict[str, float]:
    """Percentiles plus sequential requests per second."""
    return {
        **percentiles(samples_ns),
        "requests_per_s": round(len(samples_ns) / (sum(samples_ns) / 1e9), 1),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_project(root: Path, customers: int, merchants: int) -> tuple[list[str], list[str]]:
    """The example project with fresh synthetic records (event times within every TTL)."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "featuredefs", root / "featuredefs", ignore=ignore)
    shutil.copytree(REPO / "generated", root / "generated", ignore=ignore)
    rng = random.Random(1)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    cids = [f"C{i:06d}" for i in range(customers)]
    mids = [f"M{i:04d}" for i in range(merchants)]
    with (root / "customers.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "customer_id",
                "last_updated_time",
                "birth_date",
                "total_spend",
                "tenure_months",
                "membership_tier",
            ]
        )
        for n, cid in enumerate(cids):
            stamp = (base - timedelta(seconds=n % 3600)).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.writerow(
                [
                    cid,
                    stamp,
                    f"19{rng.randint(40, 99)}-0{rng.randint(1, 9)}-1{n % 9}",
                    round(rng.uniform(10, 9000), 2),
                    rng.randint(1, 80),
                    rng.choice(["standard", "prime", "basic"]),
                ]
            )
    with (root / "merchants.jsonl").open("w") as fh:
        for n, mid in enumerate(mids):
            transactions = rng.randint(10, 5000)
            fh.write(
                json.dumps(
                    {
                        "merchant_id": mid,
                        "updated_at": base.timestamp() - n,
                        "mcc_description": rng.choice(["Travel", "Grocery"]),
                        "chargebacks": rng.randint(0, transactions // 20),
                        "transactions": transactions,
                        "settled_amount": round(rng.uniform(100, 9e4), 2),
                    }
                )
                + "\n"
            )
    with (root / "labels.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["customer_id", "merchant_id", "event_time", "amount", "is_fraud"])
        for n in range(400):
            out.writerow(
                [
                    rng.choice(cids),
                    rng.choice(mids),
                    base.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    round(rng.uniform(1, 900), 2),
                    int(n % 6 == 0),
                ]
            )
    return cids, mids


def setup(root: Path) -> tuple[object, object, Path]:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore
    from fsgen.train import train_from_labels

    config, spec = load_config(root), load(root)
    with LocalStore.open(config, spec) as store:
        store.ingest("customer-features", root / "customers.csv", root / "rejects-c.jsonl")
        store.ingest("merchant-features", root / "merchants.jsonl", root / "rejects-m.jsonl")
    model, _, _ = train_from_labels(config, spec, FEATURE_SET, root / "labels.csv", root / "model")
    return config, spec, model


def bodies(cids: list[str], mids: list[str], n: int) -> list[bytes]:
    rng = random.Random(2)
    return [
        json.dumps(
            {
                "customer_id": rng.choice(cids),
                "merchant_id": rng.choice(mids),
                "amount": round(rng.uniform(1, 900), 2),
            }
        ).encode()
        for _ in range(n)
    ]


def bench_in_process(
    config: object, spec: object, model: Path, requests: list[bytes], warmup: int
) -> dict[str, float]:
    from fsgen.serving.handler import load_handler
    from fsgen.serving.sources import LocalRecordSource
    from fsgen.store import LocalStore

    with LocalStore.open(config, spec) as store:  # type: ignore[arg-type]
        handler = load_handler(
            config,
            spec,
            FEATURE_SET,
            model,  # type: ignore[arg-type]
            LocalRecordSource(store),
        )
        for body in requests[:warmup]:
            handler.invoke(body)
        samples = []
        for body in requests:
            start = time.perf_counter_ns()
            handler.invoke(body)
            samples.append(time.perf_counter_ns() - start)
    return latency(samples)


class OneWriteClient:
    """A keep-alive HTTP/1.1 client that sends each request (headers and body) in one write,
    as most production HTTP clients do; http.client sends the body in a second write, which
    costs the server a second wakeup."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def post(self, body: bytes) -> tuple[int, bytes]:
        head = (
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        self.sock.sendall(head + body)
        status = int(self.reader.readline().split()[1])
        length = 0
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, self.reader.read(length)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/ping")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve-model did not start: {proc.stderr!r}") from None
            time.sleep(0.1)


def timed(call: object, requests: list[bytes], warmup: int) -> dict[str, float]:
    for body in requests[:warmup]:
        call(body)  # type: ignore[operator]
    samples = []
    for body in requests:
        start = time.perf_counter_ns()
        call(body)  # type: ignore[operator]
        samples.append(time.perf_counter_ns() - start)
    return latency(samples)


def bench_http(
    root: Path, model: Path, requests: list[bytes], warmup: int
) -> dict[str, dict[str, float]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsgen.cli",
            "--project",
            str(root),
            "serve-model",
            FEATURE_SET,
            "--model",
            str(model),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(port, proc)
        client = OneWriteClient(port)

        def one_write(body: bytes) -> None:
            status, data = client.post(body)
            if status != 200:
                raise SystemExit(f"HTTP {status}: {data!r}")

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json"}

        def stdlib(body: bytes) -> None:
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status}: {data!r}")

        results = {
            "one_write_client": timed(one_write, requests, warmup),
            "http_client_two_writes": timed(stdlib, requests, warmup),
        }
        client.close()
        conn.close()
        return results
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small store, fewer calls")
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args()
    customers, merchants = (2_000, 100) if args.quick else (100_000, 2_000)
    calls = args.calls or (500 if args.quick else 5_000)
    warmup = min(200, calls)
    tmp = Path(tempfile.mkdtemp(prefix="fsgen-bench-inference-"))
    try:
        root = tmp / "proj"
        cids, mids = make_project(root, customers, merchants)
        config, spec, model = setup(root)
        requests = bodies(cids, mids, calls)
        baseline = bench_in_process(config, spec, model, requests, warmup)
        over_http = bench_http(root, model, requests, warmup)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "POST /invocations (fsgen serve-model), one customer + one merchant "
                "lookup, on-demand feature, logistic model",
                "store": {"customers": customers, "merchants": merchants},
                "http_loopback": over_http["one_write_client"],
                "http_loopback_stdlib_http_client": over_http["http_client_two_writes"],
                "baseline_in_process_handler": baseline,
                "http_overhead_p50_ms": round(
                    over_http["one_write_client"]["p50_ms"] - baseline["p50_ms"], 4
                ),
                "target_p99_ms": TARGET_P99_MS,
                "meets_target": over_http["one_write_client"]["p99_ms"] < TARGET_P99_MS,
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),  # tails grow on a busy machine
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
