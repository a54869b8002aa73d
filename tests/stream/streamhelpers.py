"""Helpers shared by the streaming tests."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

from fsgen.stream.events import event_record

REPO = Path(__file__).resolve().parents[2]
GROUP = "customer-features"


def good(
    customer_id: str = "C1", when: str = "2024-03-01T00:00:00Z", **extra: object
) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "last_updated_time": when,
        "birth_date": "1985-06-15",
        "membership_tier": "prime",
        "tenure_months": 10,
        "total_spend": 1000.0,
        **extra,
    }


def event(payloads: list[bytes | dict[str, object]], start: int = 1) -> dict[str, object]:
    """A Kinesis event; dicts are sent as JSON, bytes as they are."""
    records = []
    for n, p in enumerate(payloads, start=start):
        data = json.dumps(p).encode() if isinstance(p, dict) else p
        records.append(event_record(data, f"{n:056d}", str(n)))
    return {"Records": records}


def raw_event(data_field: str, seq: str = "1") -> dict[str, object]:
    """An event whose record's ``data`` is given verbatim (e.g. not base64)."""
    record = event_record(b"{}", seq, "k")
    record["kinesis"]["data"] = data_field  # type: ignore[index]
    return {"Records": [record]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
