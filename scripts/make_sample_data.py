"""Write the example project's sample raw data into data/. Deterministic: same bytes every run.

python scripts/make_sample_data.py
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20240101
N_CUSTOMERS = 200
N_MERCHANTS = 40
N_LABELS = 2000
MERCHANT_DAYS = 40  # with a 7-day TTL, merchant snapshots cover the labels' 45 days
START = datetime(2024, 1, 1, tzinfo=UTC)
TIERS = ["basic", "prime", "Prime_Plus", "standard"]
CATEGORIES = ["Grocery", "Electronics", "Travel", "Restaurants", "Gaming", "Jewelry"]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def customers(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for i in range(N_CUSTOMERS):
        cid = f"C{i:04d}"
        birth = datetime(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
        tenure = rng.randint(0, 60)
        spend = round(rng.uniform(50, 400) * max(tenure, 1), 2)
        tier = rng.choice(TIERS)
        when = START + timedelta(hours=rng.randint(0, 24 * 20))
        for _ in range(rng.randint(1, 3)):
            rows.append(
                {
                    "customer_id": cid,
                    "last_updated_time": iso(when),
                    "birth_date": birth.date().isoformat(),
                    "total_spend": spend,
                    "tenure_months": tenure,
                    "membership_tier": tier,
                }
            )
            when += timedelta(hours=rng.randint(12, 24 * 15))
            tenure += 1
            spend = round(spend + rng.uniform(20, 500), 2)
            if rng.random() < 0.2:
                tier = rng.choice(TIERS)
    rows.sort(key=lambda r: (str(r["last_updated_time"]), str(r["customer_id"])))
    return rows


def merchants(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for i in range(N_MERCHANTS):
        when = START + timedelta(hours=rng.randint(0, 24 * 3))
        risky = rng.random() < 0.25
        while when < START + timedelta(days=MERCHANT_DAYS):  # settlement runs every 2-6 days
            transactions = rng.randint(100, 5000)
            rate = rng.uniform(0.025, 0.08) if risky else rng.uniform(0.0, 0.015)
            rows.append(
                {
                    "merchant_id": f"M{i:03d}",
                    "updated_at": when.timestamp(),
                    "mcc_description": f" {rng.choice(CATEGORIES)} ",
                    "chargebacks": int(transactions * rate),
                    "transactions": transactions,
                    "settled_amount": round(transactions * rng.uniform(10, 300), 2),
                }
            )
            when += timedelta(days=rng.randint(2, 6))
    rows.sort(key=lambda r: (float(r["updated_at"]), str(r["merchant_id"])))  # type: ignore[arg-type]
    return rows


def labels(rng: random.Random, merchant_rows: list[dict[str, object]]) -> list[dict[str, object]]:
    risky = {
        str(m["merchant_id"])
        for m in merchant_rows
        if int(m["chargebacks"]) / int(m["transactions"]) > 0.02
    }  # type: ignore[call-overload]
    rows = []
    for _ in range(N_LABELS):
        cid = f"C{rng.randint(0, N_CUSTOMERS + 9):04d}"  # a few unknown customers
        mid = f"M{rng.randint(0, N_MERCHANTS - 1):03d}"
        when = START + timedelta(minutes=rng.randint(0, 60 * 24 * 45))
        amount = round(rng.lognormvariate(3.5, 1.0), 2)
        p = 0.02 + (0.25 if mid in risky else 0.0) + (0.2 if amount > 250 else 0.0)
        rows.append(
            {
                "customer_id": cid,
                "merchant_id": mid,
                "event_time": iso(when),
                "amount": amount,
                "is_fraud": int(rng.random() < p),
            }
        )
    return rows


def stream_updates(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    when = START + timedelta(days=45)
    for i in range(30):
        cid = f"C{rng.randint(0, 9):04d}"
        rows.append(
            {
                "customer_id": cid,
                "last_updated_time": iso(when + timedelta(minutes=i)),
                "birth_date": "1985-06-15",
                "total_spend": round(rng.uniform(500, 9000), 2),
                "tenure_months": rng.randint(1, 60),
                "membership_tier": rng.choice(TIERS),
            }
        )
    return rows


def purchases(rng: random.Random) -> list[dict[str, object]]:
    """Card purchases over the labels' 45 days: a few per customer, some on the same minute."""
    rows = []
    for i in range(N_CUSTOMERS):
        cid = f"C{i:04d}"
        for _ in range(rng.randint(0, 5)):
            when = START + timedelta(minutes=5 * rng.randint(0, 12 * 24 * 45 - 1))
            rows.append(
                {
                    "customer_id": cid,
                    "purchased_at": iso(when),
                    "amount": round(rng.lognormvariate(3.5, 0.8), 2),
                }
            )
    rows.sort(key=lambda r: (str(r["purchased_at"]), str(r["customer_id"])))
    return rows


def purchase_stream(rng: random.Random) -> list[dict[str, object]]:
    """Purchases arriving on the stream after the batch history: a few customers, a refund
    (amount 0: no count), one event 5 minutes late (within lateness) and one 2 hours late
    (dead-lettered)."""
    when = START + timedelta(days=45)
    rows: list[dict[str, object]] = []
    for i in range(24):
        rows.append(
            {
                "customer_id": f"C{rng.randint(0, 5):04d}",
                "purchased_at": iso(when + timedelta(minutes=3 * i)),
                "amount": round(rng.lognormvariate(3.5, 0.8), 2),
            }
        )
    rows[10]["amount"] = 0.0
    late = dict(rows[20], purchased_at=iso(when + timedelta(minutes=3 * 20 - 5)))
    too_late = dict(rows[21], purchased_at=iso(when + timedelta(minutes=3 * 21 - 120)))
    rows[20:22] = [rows[20], late, rows[21], too_late]
    for row in rows[-5:]:
        row["customer_id"] = "C0001"
    return rows


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "data"
    out.mkdir(exist_ok=True)
    rng = random.Random(SEED)
    merchant_rows = merchants(rng)
    write_csv(out / "customers.csv", customers(rng))
    write_jsonl(out / "merchants.jsonl", merchant_rows)
    write_csv(out / "labels.csv", labels(rng, merchant_rows))
    write_jsonl(out / "customer_updates.jsonl", stream_updates(rng))
    events = random.Random(SEED + 15)  # its own generator: the files above stay as they are
    write_csv(out / "purchases.csv", purchases(events))
    write_jsonl(out / "purchase_stream.jsonl", purchase_stream(events))
    bad = [
        {
            "customer_id": "C9001",
            "last_updated_time": "2024-02-01T00:00:00Z",
            "birth_date": "1990-01-01",
            "total_spend": "not-a-number",
            "tenure_months": 3,
            "membership_tier": "basic",
        },
        {
            "customer_id": "",
            "last_updated_time": "2024-02-01T00:00:00Z",
            "birth_date": "1990-01-01",
            "total_spend": 10.0,
            "tenure_months": 3,
            "membership_tier": "basic",
        },
        {
            "customer_id": "C9002",
            "last_updated_time": "yesterday",
            "birth_date": "1990-01-01",
            "total_spend": 10.0,
            "tenure_months": 3,
            "membership_tier": "prime",
        },
        {
            "customer_id": "C9003",
            "last_updated_time": "2024-02-01T00:00:00Z",
            "birth_date": "1990-02-30",
            "total_spend": 10.0,
            "tenure_months": 3,
            "membership_tier": "prime",
        },
        {
            "customer_id": "C9004",
            "last_updated_time": "2024-02-01T00:00:00Z",
            "birth_date": "1991-07-04",
            "total_spend": 99.5,
            "tenure_months": 2,
            "membership_tier": "prime",
        },
    ]
    write_csv(out / "customers_with_errors.csv", bad)


if __name__ == "__main__":
    main()
