"""Property: for generated raw records, the vector the handler builds from the online store is
the point-in-time training row built at the same instant, bit for bit."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from inference_helpers import FEATURE_SET, REPO

from fsgen.config import load_config
from fsgen.loader import load
from fsgen.pit import build_dataset
from fsgen.serving.handler import load_handler
from fsgen.serving.sources import LocalRecordSource
from fsgen.store import LocalStore

CONFIG = load_config(REPO)
SPEC = load(REPO)
AS_OF = 1_717_200_000.0  # 2024-06-01T00:00:00Z
COLUMNS = SPEC.feature_set(FEATURE_SET).columns

money = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)
customers = st.lists(
    st.tuples(
        money,
        st.integers(0, 600),
        st.sampled_from(["prime", " Prime_Plus", "basic", " "]),
        st.integers(0, 40 * 86400),
    ),
    min_size=1,
    max_size=4,
)
merchants = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.integers(0, 10_000),
        money,
        st.text("abc ", min_size=1, max_size=6),
        st.floats(0, 10 * 86400),
    ),
    min_size=1,
    max_size=3,
)


def bits(value: object) -> object:
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    return (type(value).__name__, value)


@settings(max_examples=12, deadline=None)
@given(customers, merchants, st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_online_vector_equals_training_row(
    customer_rows: list[tuple[float, int, str, int]],
    merchant_rows: list[tuple[int, int, float, str, float]],
    amount: float,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = CONFIG.model_copy(update={"store_dir": str(Path(tmp) / "store")})
        raw_customers = [
            {
                "customer_id": f"C{n}",
                "birth_date": "1980-02-29",
                "total_spend": spend,
                "tenure_months": tenure,
                "membership_tier": tier,
                "last_updated_time": pd.Timestamp(AS_OF - age, unit="s", tz="UTC").strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
            }
            for n, (spend, tenure, tier, age) in enumerate(customer_rows)
        ]
        raw_merchants = [
            {
                "merchant_id": f"M{n}",
                "chargebacks": cb,
                "transactions": tx,
                "settled_amount": settled,
                "mcc_description": mcc,
                "updated_at": AS_OF - age,
            }
            for n, (cb, tx, settled, mcc, age) in enumerate(merchant_rows)
        ]
        with LocalStore.open(config, SPEC) as store:
            for group, rows in (
                ("customer-features", raw_customers),
                ("merchant-features", raw_merchants),
            ):
                assert store.put_raw(group, rows).errors == []
            requests = [
                {"customer_id": c["customer_id"], "merchant_id": m["merchant_id"], "amount": amount}
                for c in [*raw_customers, {"customer_id": "absent"}]
                for m in raw_merchants
            ]
            handler = load_handler(
                config,
                SPEC,
                FEATURE_SET,
                None,
                LocalRecordSource(store, lambda: AS_OF),
                lambda: AS_OF,
            )
            served = handler.endpoint.vectors(requests)
            labels = pd.DataFrame([{**r, "event_time": AS_OF} for r in requests])
            frame = build_dataset(config, SPEC, FEATURE_SET, labels, store=store.root)
    for index, vector in enumerate(served):
        row = frame.iloc[index]
        trained = [row[c].item() if hasattr(row[c], "item") else row[c] for c in COLUMNS]
        assert [bits(v) for v in vector] == [bits(v) for v in trained], requests[index]
