"""Benchmark: ``fsgen stream consume`` into the local store, its batches committed together
(the default: up to 1 s / 100,000 records per commit) against one commit per GetRecords
batch (``commit_seconds=0``, the consumer before coalescing), measured in the same run.

    python bench/bench_consume.py [--records N | --quick] [--batch-size N] [--rounds N]

A moto Kinesis server (its own process, so its CPU is not counted) holds N customer-features
updates over 28 days on 2 shards; each round consumes the whole stream twice, interleaved
A B A B, into a fresh store with fresh checkpoints. Prints one JSON object with, per mode, the
best round's wall seconds, records/s, consumer CPU seconds, store commits and offline files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUP = "customer-features"


def make_records(n: int, seed: int = 3) -> list[bytes]:
    """Updates of 2,000 customers at random minutes over 28 days."""
    rnd = random.Random(seed)
    tiers = ["prime", "standard", "prime_plus", "basic"]
    out = []
    for i in range(n):
        s = rnd.randrange(28 * 86400)
        when = f"2024-03-{s // 86400 + 1:02d}T{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:00Z"
        row = {
            "customer_id": f"C{i % 2000:05d}",
            "last_updated_time": when,
            "birth_date": f"{rnd.randrange(1940, 2005)}-{rnd.randrange(1, 13):02d}-01",
            "membership_tier": rnd.choice(tiers),
            "tenure_months": rnd.randrange(0, 240),
            "total_spend": round(rnd.uniform(0, 50000), 2),
        }
        out.append(json.dumps(row).encode())
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def fill(url: str, records: list[bytes]) -> str:
    import boto3

    client = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1")
    name = "bench-consume"
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    for start in range(0, len(records), 500):
        entries = [
            {"Data": d, "PartitionKey": json.loads(d)["customer_id"]}
            for d in records[start : start + 500]
        ]
        client.put_records(StreamName=name, Records=entries)
    return name


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def consume_once(
    url: str, stream: str, n: int, batch: int, commit_seconds: float, work: Path
) -> dict[str, object]:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore
    from fsgen.stream.checkpoints import Checkpoints
    from fsgen.stream.consume import Consumer, kinesis_client
    from fsgen.stream.events import load_handler

    config = load_config(ROOT)
    spec = load(config.root)
    handler = load_handler(config, spec, GROUP)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        store = LocalStore(Path(tmp) / "store", spec)
        consumer = Consumer(
            handler,
            kinesis_client(url, "us-east-1"),
            stream,
            store.writer(GROUP),
            None,
            Checkpoints(Path(tmp) / "store", stream, GROUP),
            batch_size=batch,
            poll_interval=0.0,
            commit_seconds=commit_seconds,
        )
        c0, t0 = cpu(), time.perf_counter()
        result = consumer.run(max_records=n)
        wall, cpu_s = time.perf_counter() - t0, cpu() - c0
        assert result.written == n, result.summary()
        files = len(list(store.offline_dir(GROUP).rglob("*.parquet")))
        store.close()
    return {
        "seconds": round(wall, 3),
        "records_per_s": round(n / wall),
        "cpu_seconds": round(cpu_s, 3),
        "batches": result.batches,
        "commits": result.commits,
        "offline_files": files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="4,000 records, one round")
    args = parser.parse_args()
    n, rounds = (4_000, 1) if args.quick else (args.records, args.rounds)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    records = make_records(n)
    moto, url = start_moto()
    try:
        stream = fill(url, records)
        modes = {"coalesced": 1.0, "per_batch": 0.0}
        runs: dict[str, list[dict[str, object]]] = {m: [] for m in modes}
        with tempfile.TemporaryDirectory(prefix="fsgen-bench-consume-") as tmp:
            consume_once(url, stream, min(n, 500), args.batch_size, 1.0, Path(tmp))  # warm-up
            for _ in range(rounds):
                for mode, seconds in modes.items():
                    runs[mode].append(
                        consume_once(url, stream, n, args.batch_size, seconds, Path(tmp))
                    )
    finally:
        moto.terminate()
        moto.wait()
    best = {m: min(r, key=lambda x: float(x["seconds"])) for m, r in runs.items()}  # type: ignore[arg-type]
    out = {
        "benchmark": "consume",
        "group": GROUP,
        "records": n,
        "batch_size": args.batch_size,
        "rounds": rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "consume": best["coalesced"],
        "baselines": {"per_batch_commits": best["per_batch"]},
        "speedup": round(
            float(best["per_batch"]["seconds"]) / float(best["coalesced"]["seconds"]), 2
        ),
        "cpu_ratio": round(
            float(best["coalesced"]["cpu_seconds"]) / float(best["per_batch"]["cpu_seconds"]), 2
        ),
        "all_rounds": runs,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
