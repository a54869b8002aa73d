"""Shared helpers of the definitions."""


def clip(value: float) -> float:
    return min(max(value, 0.0), MAX_VALUE)


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
