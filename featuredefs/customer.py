"""Customer profile and spend, refreshed from the CRM export and the profile-change stream."""

from datetime import datetime

from featuredefs.entities import customer
from fsgen import FeatureGroup, Fractional, Integral, Online, Source

PRIME_TIERS = ("prime", "prime_plus")

customer_features = FeatureGroup(
    "customer-features",
    entity=customer,
    event_time="last_updated_time",
    online=Online(ttl="30d"),
    owner="growth-ml",
    description="Customer profile and spend, one record per profile update",
    tags={"domain": "customer", "cost-center": "growth"},
    sources=[
        Source.batch("data/customers.csv"),
        Source.kinesis("customer-profile-updates"),
    ],
    max_staleness="2d",
)


@customer_features.feature(
    Integral, description="Age in whole years at the update time", pii="personal"
)
def age(birth_date: str, last_updated_time: str) -> int:
    born = datetime.fromisoformat(birth_date)
    now = datetime.fromisoformat(last_updated_time.replace("Z", "+00:00"))
    before_birthday = (now.month, now.day) < (born.month, born.day)
    return now.year - born.year - int(before_birthday)


@customer_features.feature(Fractional, description="Average spend per month of tenure")
def avg_monthly_spend(total_spend: float, tenure_months: int) -> float:
    return total_spend / max(tenure_months, 1)


@customer_features.feature(Integral, description="1 when the customer has a Prime membership")
def is_prime_member(membership_tier: str) -> int:
    return int(membership_tier.strip().lower() in PRIME_TIERS)
