"""FS114 flags only names that would raise NameError: builtins, module globals, imports,
parameters, closures, comprehensions, lambdas, class bodies and ``global`` assignments are
fine; a misspelt name is reported wherever it hides (nested code, a package helper)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fsgen.loader import check

HEADER = """\
import math
from fsgen import Entity, FeatureGroup, Fractional, Integral, String
from featuredefs.util import scale

user = Entity("user_id", String, description="u")
g = FeatureGroup("grp", entity=user, event_time="ts", owner="o", description="d")
LIMIT = 10
"""

UTIL = """\
FACTOR = 2.0


def scale(x: float) -> float:
    return x * FACTOR


def unused(x: float) -> float:
    return x * NOT_CALLED_BY_ANY_FEATURE
"""

CLEAN = """\
@g.feature(Fractional, description="x")
def fine(raw: float, n: int) -> float:
    helper = lambda v: v + LIMIT  # noqa: E731
    squares = [math.sqrt(abs(v)) for v in range(n)]

    def inner(v: float) -> float:
        return scale(v) + helper(v)

    class Box:
        size = len(squares)
        double = size * 2

    return inner(raw) + Box.double + max(squares or [0.0]) + float(sum({n: n}.values()))


COUNTER = 0


@g.feature(Integral, description="y")
def counted(n: int) -> int:
    global COUNTER
    COUNTER = COUNTER + 1
    return n + isinstance(n, int)
"""


def fs114(make_project: Callable[..., Path], body: str) -> list[tuple[str, int, str]]:
    root = make_project({"featuredefs/util.py": UTIL, "featuredefs/defs.py": HEADER + body})
    result = check(root)
    return [(d.path, d.line, d.message) for d in result.diagnostics if d.code == "FS114"]


def test_valid_names_are_not_reported(make_project: Callable[..., Path]) -> None:
    assert fs114(make_project, CLEAN) == []


def test_a_misspelt_name_in_nested_code_is_reported_at_its_line(
    make_project: Callable[..., Path],
) -> None:
    body = CLEAN.replace("for v in range(n)]", "for v in range(nn)]").replace(
        "v + LIMIT", "v + LIMT"
    )
    found = fs114(make_project, body)
    assert [(p, line) for p, line, _ in found] == [
        ("featuredefs/defs.py", 10),
        ("featuredefs/defs.py", 11),
    ]
    assert "name 'LIMT' is not defined: feature 'fine' of group 'grp'" in found[0][2]
    assert "name 'nn' is not defined" in found[1][2]


def test_a_helper_is_checked_only_when_a_feature_calls_it(
    make_project: Callable[..., Path],
) -> None:
    util_broken = {"featuredefs/util.py": UTIL.replace("x * FACTOR", "x * FACTORR")}
    root = make_project({**{"featuredefs/defs.py": HEADER + CLEAN}, **util_broken})
    found = [d for d in check(root).diagnostics if d.code == "FS114"]
    assert [(d.path, d.line) for d in found] == [("featuredefs/util.py", 5)]
    assert found[0].hint == "did you mean 'FACTOR'?"
