"""The entities features describe."""

from fsgen import Entity, String

customer = Entity("customer_id", String, description="A retail customer holding a card")
merchant = Entity("merchant_id", String, description="A merchant accepting card payments")
