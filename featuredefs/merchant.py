"""Merchant risk profile, recomputed nightly from settlement data."""

from featuredefs.entities import merchant
from fsgen import FeatureGroup, Fractional, Integral, Online, Source, String

HIGH_RISK_CHARGEBACK_RATE = 0.02

merchant_features = FeatureGroup(
    "merchant-features",
    entity=merchant,
    event_time="updated_at",
    event_time_type=Fractional,
    online=Online(ttl="7d"),
    owner="risk-ml",
    description="Merchant chargeback history and ticket size",
    tags={"domain": "merchant"},
    sources=[Source.batch("data/merchants.jsonl")],
    max_staleness="2d",
)


@merchant_features.feature(String, description="Merchant category, lower case")
def category(mcc_description: str) -> str:
    return mcc_description.strip().lower()


@merchant_features.feature(Fractional, description="Share of transactions charged back")
def chargeback_rate(chargebacks: int, transactions: int) -> float:
    return chargebacks / max(transactions, 1)


@merchant_features.feature(Fractional, description="Average transaction amount")
def avg_ticket(settled_amount: float, transactions: int) -> float:
    return settled_amount / max(transactions, 1)


@merchant_features.feature(Integral, description="1 when the chargeback rate is above 2%")
def is_high_risk(chargeback_rate: float) -> int:
    return int(chargeback_rate > HIGH_RISK_CHARGEBACK_RATE)
