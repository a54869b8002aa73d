"""Exact numbers of aggregation partials: every double is a dyadic rational ``m * 2**e``, so
counts and sums kept exactly merge in any order to the same bits and are rounded once, when a
window is finalized (see :mod:`fsgen.runtime.aggregate`). Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Dyadic = tuple[int, int]  # m * 2**e, m odd or zero (then e == 0)


def _norm(m: int, e: int) -> Dyadic:
    if m == 0:
        return (0, 0)
    tz = (m & -m).bit_length() - 1
    return (m >> tz, e + tz)


def dyadic(x: int | float) -> Dyadic:
    if isinstance(x, int):
        return _norm(x, 0)
    num, den = x.as_integer_ratio()
    return _norm(num, 1 - den.bit_length())


def _add(a: Sequence[int], b: Sequence[int]) -> Dyadic:
    m1, e1 = a
    m2, e2 = b
    if m1 == 0:
        return (m2, e2)
    if m2 == 0:
        return (m1, e1)
    e = min(e1, e2)
    return _norm((m1 << (e1 - e)) + (m2 << (e2 - e)), e)


def _ratio(m: int, e: int, divisor: int = 1) -> float:
    """``m * 2**e / divisor`` rounded once to the nearest double (Python's int division)."""
    try:
        return (m << e) / divisor if e >= 0 else m / (divisor << -e)
    except OverflowError:
        return math.inf if m > 0 else -math.inf  # m may be beyond every double itself


#: An exact number in compact form: an int; a double; a list of doubles whose exact sum it is
#: (non-overlapping, largest first, like math.fsum's partials); or [m, e] ints = m * 2**e when
#: it lies beyond the double range. Most tiles hold a double.
Exact = int | float | list[float] | list[int]


def _exact(m: int, e: int) -> Exact:
    """The compact form of ``m * 2**e``."""
    if m.bit_length() <= 53 and e >= -1074 and m.bit_length() + e <= 1024:
        return math.ldexp(m, e)
    sign, rest, out = (-1 if m < 0 else 1), abs(m), []
    try:
        while rest:
            shift = max(rest.bit_length() - 53, 0)
            top = rest >> shift
            if e + shift + (top & -top).bit_length() - 1 < -1074:
                return [m, e]  # a part below the smallest subnormal: no double holds it
            out.append(sign * math.ldexp(top, e + shift))
            rest -= top << shift
    except OverflowError:
        return [m, e]
    return out


def _dy(x: Exact) -> Dyadic:
    if isinstance(x, list):
        if x and isinstance(x[0], int):
            return (x[0], x[1])  # type: ignore[return-value]
        acc: Dyadic = (0, 0)
        for part in x:
            acc = _add(acc, dyadic(part))
        return acc
    return dyadic(x)


def _exact_sum(parts: Sequence[Exact], integral: bool) -> Exact:
    """The exact sum of exact numbers, in compact form (ints stay ints)."""
    if integral:
        return sum(parts)  # type: ignore[arg-type]
    acc: Dyadic = (0, 0)
    for x in parts:
        acc = _add(acc, _dy(x))
    return _exact(*acc)


def _round(parts: Sequence[Exact], integral: bool) -> int | float:
    """The exact sum of ``parts`` as an int, or rounded once to a double."""
    if integral:
        return sum(parts)  # type: ignore[arg-type]
    flat: list[float] = []
    for x in parts:
        if type(x) is float:
            flat.append(x)
        elif x and isinstance(x[0], float):  # type: ignore[index]
            flat += x  # type: ignore[arg-type]
        else:
            m, e = _dy(_exact_sum(parts, False))
            return _ratio(m, e)
    try:
        return math.fsum(flat)  # correctly rounded, whatever the order
    except OverflowError:
        m, e = _dy(_exact_sum(parts, False))
        return _ratio(m, e)
