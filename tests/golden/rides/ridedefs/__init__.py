"""A ride-sharing app: dispatch features for drivers per city zone and riders."""
