"""A fingerprint of what the aggregation stream step stores, to compare two versions of the
code byte for byte (not a benchmark: it prints one JSON object of sha256 digests).

    cd <a checkout> && <its python> <this file>

Streams a messy event set through the generated ``purchases`` handler into a fresh local
store: events out of order, late ones (rejected), ties (equal event times), undecodable and
invalid records, batches retried at once and replayed later; then hashes the handler's
results (failures with their messages), the dead letters, the offline event rows (without
the store's write-time columns) and the online state strings. Run from the checkout to test:
it imports ``fsgen`` and ``bench_stream`` from the current directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))

import bench_stream as b


class Letters:
    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []

    def send(self, entries: list[dict[str, object]]) -> None:
        self.entries.extend(entries)


def messy(n: int, customers: int, seed: int = 11) -> list[bytes]:
    rnd = random.Random(seed)
    base = datetime(2024, 3, 1, tzinfo=UTC)
    out: list[bytes] = []
    for i in range(n):
        lag = rnd.choice([0, 0, 0, rnd.randrange(0, 300_000), rnd.randrange(0, 7_200_000)])
        t = base + timedelta(milliseconds=1_000 * (i // 3) - lag)  # ties: three per second
        r = rnd.random()
        event: dict[str, object] = {
            "customer_id": f"C{rnd.randrange(customers):04d}",
            "purchased_at": t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "amount": round(rnd.lognormvariate(3.5, 0.8), rnd.choice([0, 2, 7])),
        }
        if r < 0.01:
            event["amount"] = "lots"
        elif r < 0.02:
            del event["purchased_at"]
        elif r < 0.03:
            out.append(b"{not json")
            continue
        out.append(json.dumps(event).encode())
    return out


def digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> None:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.runtime.streamrecords import logs_to
    from fsgen.store import LocalStore
    from fsgen.stream.events import load_handler

    config = load_config(Path(os.getcwd()))
    spec = load(config.root)
    handler = load_handler(config, spec, b.AGG_GROUP)
    events = b.kinesis_events(messy(12_000, 400), 250)
    for ev in events[::7]:  # a record's data not base64
        ev["Records"][3]["kinesis"]["data"] = "%%%"  # type: ignore[index]
    order = [*range(len(events))]
    order[10:10] = [3, 3]  # a batch retried, twice
    order += [5, 20, 0]  # batches replayed after others
    results: list[object] = []
    letters = Letters()
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "store", spec)
        writer = store.writer(b.AGG_GROUP)
        for i in order:
            with logs_to(lambda line: None):  # the failures are in the results digested
                r = handler.process(events[i], writer, letters)
            results.append(
                [
                    r.read,
                    r.written,
                    [[f.sequence_number, f.field, f.message, f.kind] for f in r.failures],
                ]
            )
        writer.close()
        rt = spec.group(b.AGG_GROUP)
        offline = store.read_offline(b.AGG_GROUP, dedup=False)
        kept = [c for c in offline.columns if c not in ("api_invocation_time", "write_time")]
        rows = offline[kept].astype(str).sort_values(kept).values.tolist()
        snap = store.online.snapshot(store.runtime(b.AGG_GROUP))
        store.close()
    states_of = [a.runtime().state_column for a in rt.aggregations]
    states = {rid: {c: rec[c] for c in states_of} for rid, (_, _, rec) in sorted(snap.items())}
    print(
        json.dumps(
            {
                "batches": len(order),
                "results": digest(results),
                "dead_letters": digest(
                    [{k: v for k, v in e.items() if "time" not in k} for e in letters.entries]
                ),
                "offline_rows": [len(rows), digest(rows)],
                "online_states": [len(states), digest(states)],
                "rt": rt.name,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
