"""Tags given as a list instead of a mapping."""
