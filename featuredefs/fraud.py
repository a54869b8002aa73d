"""The fraud model's input contract and its request-time feature."""

from featuredefs.customer import age, avg_monthly_spend, customer_features, is_prime_member
from featuredefs.merchant import avg_ticket, category, chargeback_rate, is_high_risk
from fsgen import FeatureSet, Fractional, on_demand


@on_demand(
    Fractional,
    sources=[customer_features],
    description="Transaction amount relative to the customer's monthly spend",
)
def amount_to_monthly_spend(amount: float, avg_monthly_spend: float) -> float:
    return amount / max(avg_monthly_spend, 1.0)


fraud_model = FeatureSet(
    "fraud-model",
    [
        age,
        avg_monthly_spend,
        is_prime_member,
        category,
        chargeback_rate,
        avg_ticket,
        is_high_risk,
        amount_to_monthly_spend,
    ],
    description="Card-fraud classifier: is this transaction fraudulent?",
    owner="risk-ml",
    label_time="event_time",
    labels=["is_fraud"],
    missing="default",
    defaults={
        age: -1,
        avg_monthly_spend: 0.0,
        is_prime_member: 0,
        category: "unknown",
        chargeback_rate: 0.0,
        avg_ticket: 0.0,
        is_high_risk: 0,
        amount_to_monthly_spend: 0.0,
    },
)
