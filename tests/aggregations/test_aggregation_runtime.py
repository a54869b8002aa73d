"""The stdlib state library: exactness, decay, lateness, replays, encoding and its limits."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsgen.runtime.aggregate import (
    APPLIED,
    DUPLICATE,
    LATE,
    MAX_RECORD_BYTES,
    AggregationDef,
    AggregationError,
    AggregationState,
    coerce_value,
    encode_states,
    finalize_record,
)

RUNTIME = Path(__file__).resolve().parents[2] / "fsgen" / "runtime" / "aggregate.py"
S = 1_000_000
HOUR = 3600 * S


def define(function: str, kind: str = "Fractional", **kw: object) -> AggregationDef:
    return AggregationDef(
        name="x",
        function=function,
        value_kind=kind,
        windows=kw.pop("windows", (HOUR, 24 * HOUR, None)),  # type: ignore[arg-type]
        hop=kw.pop("hop", HOUR),  # type: ignore[arg-type]
        lateness=kw.pop("lateness", HOUR),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_sums_and_means_are_rounded_once_whatever_the_order() -> None:
    d = define("sum")
    values = [0.1, 0.2, 0.3, 1e16, -1e16]
    forward, backward = AggregationState(d), AggregationState(d)
    for i, v in enumerate(values):
        forward.apply(i, i, "h", v)
    for i, v in enumerate(reversed(values)):
        backward.apply(10 - i, i, "h", v)
    assert forward.finalize(HOUR)["x_1h"] == 0.6  # naive left-to-right gives 0.0
    assert backward.finalize(HOUR)["x_1h"] == 0.6


def test_variance_has_no_cancellation() -> None:
    d = define("variance")
    state = AggregationState(d)
    for i, v in enumerate([1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]):
        state.apply(i, i, "h", v)
    assert state.finalize(HOUR)["x_1h"] == 30.0


def test_a_count_decays_when_events_stop() -> None:
    state = AggregationState(define("count"))
    for i in range(3):
        state.apply(i * S, i, "h", 1.0)
    assert state.finalize(10 * S) == {"x_1h": 3, "x_1d": 3, "x_lifetime": 3}
    assert state.finalize(2 * HOUR) == {"x_1h": 0, "x_1d": 3, "x_lifetime": 3}
    assert state.finalize(30 * HOUR) == {"x_1h": 0, "x_1d": 0, "x_lifetime": 3}


def test_an_event_at_exactly_the_read_time_is_excluded() -> None:
    state = AggregationState(define("last", "String"))
    state.apply(5 * S, 0, "h", "before")
    state.apply(9 * S, 1, "h", "trigger")
    assert state.finalize(9 * S)["x_1h"] == "before"
    assert state.finalize(9 * S + 1)["x_1h"] == "trigger"


def test_late_events_land_in_their_tile_or_are_rejected_with_a_reason() -> None:
    state = AggregationState(define("count"))
    assert state.apply(3 * HOUR, 0, "a", 1.0) == APPLIED
    assert state.apply(2 * HOUR, 1, "b", 1.0) == APPLIED  # exactly the allowed lateness
    assert state.apply(2 * HOUR - 1, 2, "c", 1.0) == LATE
    reason = state.late_reason(2 * HOUR - 1)
    assert reason == (
        "event time 1970-01-01T01:59:59.999999Z is 1h0.000001s older than the newest event "
        "(1970-01-01T03:00:00Z) of this entity; aggregation 'x' allows 1h"
    ), reason
    assert state.apply(2 * HOUR, 1, "b", 1.0) == DUPLICATE  # a retried batch
    assert state.finalize(3 * HOUR + 1)["x_1d"] == 2


def test_old_tiles_fold_into_the_lifetime_prefix() -> None:
    state = AggregationState(define("sum", windows=(HOUR, None), lateness=0))
    for i in range(48):
        state.apply(i * HOUR, i, "h", 1.0)
    assert len(state.tiles) <= 2 and state.prefix is not None
    assert state.finalize(48 * HOUR) == {"x_1h": 1.0, "x_lifetime": 48.0}


def test_encoding_round_trips_and_refuses_an_oversized_record() -> None:
    d = define("last_n", "String", n=50, windows=(24 * HOUR,), hop=60 * S, lateness=60 * S)
    state = AggregationState(d)
    for i in range(200):
        state.apply(i * S, i, f"h{i}", f"v{i}" * 3)
    text = state.encode()
    assert AggregationState.decode(d, text).encode() == text
    assert finalize_record([d], {"x__state": text}, 500 * S) == state.finalize(500 * S)
    assert encode_states([state]) == {"x__state": text}
    wide = define("count_distinct", "String", n=10**6, windows=(24 * HOUR,), hop=60 * S)
    big = AggregationState(wide)
    for i in range(5000):
        big.apply(i * S, i, "h", f"{i:0100d}")
    with pytest.raises(AggregationError, match="at most 358,400"):
        encode_states([big])
    small = AggregationState(dataclasses.replace(define("count"), name="y"))
    with pytest.raises(AggregationError) as caught:  # names the state to look at first
        encode_states([small, big])
    assert "('x', count_distinct: " in str(caught.value)
    assert str(caught.value).endswith("a smaller n or shorter values)")
    with pytest.raises(AggregationError, match="not readable"):
        AggregationState.decode(d, "{oops")


def test_the_record_limit_counts_bytes_not_characters() -> None:
    """2,000 distinct values of 100 two-byte characters: about 206,000 characters, which
    fit 358,400, but over 400,000 bytes of UTF-8, which do not."""
    wide = define("count_distinct", "String", n=10**6, windows=(24 * HOUR,), hop=60 * S)
    state = AggregationState(wide)
    for i in range(2000):
        state.apply(i * S, i, "h", f"{i:04d}" + "é" * 96)
    text = state.encode()
    assert len(text) < MAX_RECORD_BYTES < len(text.encode("utf-8"))
    with pytest.raises(AggregationError, match="at most 358,400"):
        encode_states([state])
    fits = AggregationState(wide)
    for i in range(1000):
        fits.apply(i * S, i, "h", f"{i:04d}" + "é" * 96)
    assert encode_states([fits]) == {"x__state": fits.encode()}


def test_values_are_coerced_or_refused() -> None:
    assert repr(coerce_value("Fractional", -0.0)) == "0.0"
    assert coerce_value("Fractional", 3) == 3.0
    for kind, bad in (("Fractional", float("nan")), ("Integral", 1.5), ("String", 1)):
        with pytest.raises(AggregationError):
            coerce_value(kind, bad)


def test_the_state_modules_import_only_the_standard_library_and_each_other() -> None:
    """The state, its codec and its read path are what a Lambda and a parser carry: every
    import of theirs (inside functions too) is the standard library's or one of them, but
    for an accelerator (orjson) imported where an ImportError falls back to the standard
    library."""
    import ast

    optional = {"orjson"}

    modules = sorted(RUNTIME.parent.glob("agg*.py"))
    own = {f"fsgen.runtime.{p.stem}" for p in modules} - {"fsgen.runtime.aggwrite"}
    assert {"fsgen.runtime.aggcodec", "fsgen.runtime.aggread"} <= own
    found = []
    for path in modules:
        if path.stem == "aggwrite":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.Try)
            and any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers
            )
            for inner in node.body
        }
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "fsgen.runtime":
                names = [f"fsgen.runtime.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if id(node) in guarded and top in optional:
                    continue
                if name not in own and top not in sys.stdlib_module_names:
                    found.append(f"{path.name}:{node.lineno}: {name}")
    assert found == []


def test_states_decode_where_the_accelerator_is_not_installed(tmp_path: Path) -> None:
    """With orjson not importable (a Lambda zip), the codec parses with json alone and reads
    a state to the same fields."""
    import subprocess

    script = (
        "import sys\n"
        "sys.modules['orjson'] = None  # not importable\n"
        "from fsgen.runtime import aggcodec\n"
        "from fsgen.runtime.aggdef import AggregationDef\n"
        "from fsgen.runtime.aggregate import AggregationState\n"
        "assert aggcodec._fast_loads is None\n"
        "d = AggregationDef(name='m', function='mean', value_kind='Fractional',\n"
        "                   windows=(3600000000,), hop=3600000000, lateness=0)\n"
        "s = AggregationState(d)\n"
        "for i in range(50): s.apply(i * 60000000, i, f'{i:016x}', i / 7)\n"
        "print(repr(aggcodec.decode(d, s.encode())))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(RUNTIME.parents[2])}
    slow = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout
    fast = subprocess.run(
        [
            sys.executable,
            "-c",
            script.replace("sys.modules['orjson'] = None", "pass").replace(
                "assert aggcodec._fast_loads is None", "assert aggcodec._fast_loads"
            ),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert slow == fast and slow.startswith("(")


@given(m=st.integers(-(2**300), 2**300), e=st.integers(-2400, 1200))
def test_exact_numbers_keep_every_bit_even_below_the_subnormals(m: int, e: int) -> None:
    """The compact form of m * 2**e reads back as the same number: squares of subnormal
    values (variance states) fall below the smallest double and must not round to zero."""
    from fractions import Fraction

    from fsgen.runtime.aggexact import _dy, _exact

    back_m, back_e = _dy(_exact(m, e))
    assert Fraction(back_m) * Fraction(2) ** back_e == Fraction(m) * Fraction(2) ** e


@pytest.mark.parametrize(
    "changed",
    [
        {"hop": HOUR // 2},
        {"windows": (HOUR, 48 * HOUR, None)},
        {"lateness": 2 * HOUR},
        {"kind": "Integral"},
    ],
)
def test_a_state_is_only_read_under_the_definition_it_was_built_for(
    changed: dict[str, object],
) -> None:
    """A changed hop, window, lateness or value kind would read old tiles wrongly: decoding
    refuses and says to backfill; the same definition decodes to the same bytes."""
    state = AggregationState(define("sum"))
    state.apply(3 * HOUR, 0, "a", 2.0)
    text = state.encode()
    assert AggregationState.decode(define("sum"), text).encode() == text
    kind = str(changed.pop("kind", "Fractional"))
    with pytest.raises(AggregationError, match=r"another definition.*backfill"):
        AggregationState.decode(define("sum", kind, **changed), text)


def test_a_state_of_another_definition_names_both_causes() -> None:
    """The reader cannot tell whether the state or its own code is the older one: a stale
    Lambda zip or endpoint reading states a backfill rebuilt for the new definition is told
    to regenerate and redeploy itself, not only to backfill (which it just did)."""
    state = AggregationState(define("sum"))
    state.apply(3 * HOUR, 0, "a", 2.0)
    with pytest.raises(AggregationError) as refused:
        AggregationState.decode(define("sum", lateness=2 * HOUR), state.encode())
    message = str(refused.value)
    assert "rebuild the states with a backfill (fsgen backfill <group>)" in message
    assert "this code is older than the definitions: regenerate and redeploy it" in message
    assert "fsgen package lambda" in message


_FRACTIONAL_FUNCTIONS = (
    "count",
    "sum",
    "mean",
    "variance",
    "variance_pop",
    "stddev",
    "stddev_pop",
    "min",
    "max",
    "last",
    "last_n",
)


def _fractional(function: str) -> AggregationDef:
    return define(function, n=3) if function == "last_n" else define(function)


@given(
    st.sampled_from(_FRACTIONAL_FUNCTIONS),
    st.sampled_from(_FRACTIONAL_FUNCTIONS),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5),
)
def test_a_state_of_another_function_says_to_backfill(
    built: str, read: str, values: list[float]
) -> None:
    """A function change (max -> mean) changes the state's shape as well as its fingerprint:
    the refusal is still the one that names the fix (a backfill), never 'not readable'."""
    if built == read:
        return
    state = AggregationState(_fractional(built))
    for i, v in enumerate(values):
        state.apply(i * HOUR, i, f"h{i}", v)
    with pytest.raises(AggregationError, match=r"another definition.*backfill"):
        AggregationState.decode(_fractional(read), state.encode())


def test_a_variance_beyond_the_doubles_is_infinite_not_an_error() -> None:
    """The exact variance of values near 1e300 is near 1e600: it rounds to inf (its numerator
    is an integer no double can hold, which math.copysign could not take)."""
    for function in ("variance", "stddev_pop"):
        state = AggregationState(define(function))
        for i, v in enumerate([1e300, -1e300, 1e300]):
            state.apply(i * S, i, "h", v)
        text = state.encode()
        answer = finalize_record([define(function)], {"x__state": text}, 3 * HOUR)
        assert answer == state.finalize(3 * HOUR)
        assert answer["x_lifetime"] == float("inf")


def test_a_state_string_decodes_as_json_loads_reads_it() -> None:
    """The decoder calls json's scanner directly on a bare JSON value; whatever else a string
    holds (whitespace around it, bytes, trailing data, garbage) gets json.loads' own answer or
    error, so the fast path changes no result and no message."""
    import json

    from fsgen.runtime import aggcodec

    d = define("count", "Fractional", windows=(24 * HOUR,), hop=HOUR)
    state = AggregationState(d)
    state.apply(5 * S, 1, "h", 1.0)
    text = state.encode()
    parsed = aggcodec.decode(d, text)
    for padded in (f" {text}\n", text.encode()):
        assert aggcodec.decode(d, padded) == parsed  # type: ignore[arg-type]
    for bad in ("{oops", "not a state", text + "x", "[", "\ufeff" + text):
        with pytest.raises(ValueError) as expected:
            json.loads(bad)
        with pytest.raises(AggregationError) as got:
            aggcodec.decode(d, bad)
        assert str(got.value) == f"state of 'x' is not readable: {expected.value}"
