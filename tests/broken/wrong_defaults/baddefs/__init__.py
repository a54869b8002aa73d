"""FeatureSet defaults that do not fit their features' types (each is FS109)."""
