"""Differential test: the column-wise fast path returns exactly what GroupRuntime.process
returns row by row -- the same records, the same rejections with the same reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.bind import group_runtime
from fsgen.runtime.bulk import process_block, process_many, process_rows, row_of
from fsgen.spec import ProjectSpec

_text = st.text(alphabet=st.sampled_from(list("ab |XZ_1 -é\t")), max_size=6)
_missing = st.sampled_from([None, math.nan, ""])
_ints = st.one_of(
    st.integers(-10, 10),
    st.integers(-(2**70), 2**70),
    st.sampled_from([" 42 ", "1_0", "4.0", "abc", "-3", "0", "٣", True, 3.0, 2.5]),
    st.integers(-100, 100).map(str),
    _missing,
)
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6).map(repr),
    st.integers(-5, 5),
    st.sampled_from(["1e400", "nan", " 2 ", "1_000.5", "x", "-0.0", True, "inf"]),
    _missing,
)
_strs = st.one_of(_text, _missing, st.integers(0, 3))


@st.composite
def _iso(draw: st.DrawFn) -> object:
    base = datetime(1000, 1, 1, tzinfo=UTC)
    moment = base + timedelta(
        seconds=draw(st.integers(0, 9000 * 365 * 86400)),
        milliseconds=draw(st.sampled_from([0, 0, 1, 500, 999])),
    )
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    style = draw(st.sampled_from(["z", "z", "z", "ms000", "offset", "lower", "bad", "short"]))
    if style == "z":
        return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
    if style == "ms000":
        return f"{text}.000Z"
    if style == "offset":
        return f"{text}+02:00"
    if style == "lower":
        return f"{text}z"
    if style == "short":
        return f"0{text[1:]}Z"
    return draw(
        st.sampled_from(
            [
                "yesterday",
                "2024-02-30T00:00:00Z",
                "2024-01-01T24:00:00Z",
                "2024-01-01T00:00:00.0001Z",
                None,
                "",
            ]
        )
    )


_times = st.one_of(_iso(), st.just("2024-01-01T00:00:00Z"))


@st.composite
def user_columns(draw: st.DrawFn) -> tuple[dict[str, list[object]], int]:
    n = draw(st.integers(0, 24))
    clean = draw(st.booleans())
    cols: dict[str, list[object]] = {
        "user_id": draw(st.lists(_text if clean else _strs, min_size=n, max_size=n)),
        "ts": draw(st.lists(_times, min_size=n, max_size=n)),
        "amount": draw(
            st.lists(st.floats(-100, 100) if clean else _floats, min_size=n, max_size=n)
        ),
        "count": draw(st.lists(st.integers(-2, 5) if clean else _ints, min_size=n, max_size=n)),
        "name": draw(st.lists(_text if clean else _strs, min_size=n, max_size=n)),
        "tags": draw(st.lists(_text if clean else _strs, min_size=n, max_size=n)),
    }
    if draw(st.booleans()) and not clean:
        del cols[draw(st.sampled_from(sorted(cols)))]
    return cols, n


def _same(rt: object, cols: dict[str, list[object]], n: int) -> None:
    fast = process_block(rt, cols, n, min_block=4)  # type: ignore[arg-type]
    slow = process_rows(rt, [row_of(cols, i) for i in range(n)])  # type: ignore[arg-type]
    assert fast.rows == slow.rows
    assert fast.columns == slow.columns
    assert fast.seconds == slow.seconds
    assert [(i, type(e), e.field, e.message) for i, e in fast.errors] == [
        (i, type(e), e.field, e.message) for i, e in slow.errors
    ]
    assert [getattr(e, "problems", None) for _, e in fast.errors] == [
        getattr(e, "problems", None) for _, e in slow.errors
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=user_columns())
def test_fast_path_equals_row_path_user_events(
    spec: ProjectSpec, data: tuple[dict[str, list[object]], int]
) -> None:
    _same(group_runtime(spec.group("user-events")), *data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 16), data=st.data())
def test_fast_path_equals_row_path_composite_key(
    spec: ProjectSpec, n: int, data: st.DataObject
) -> None:
    cols = {
        "store_id": data.draw(st.lists(_ints, min_size=n, max_size=n)),
        "sku": data.draw(st.lists(_strs, min_size=n, max_size=n)),
        "at": data.draw(st.lists(_floats, min_size=n, max_size=n)),
        "units": data.draw(st.lists(_ints, min_size=n, max_size=n)),
    }
    _same(group_runtime(spec.group("item-stock")), cols, n)


def test_clean_block_takes_the_fast_path(spec: ProjectSpec) -> None:
    rt = group_runtime(spec.group("user-events"))
    n = 50
    cols: dict[str, list[object]] = {
        "user_id": [f"u{i}" for i in range(n)],
        "ts": ["2024-03-01T10:00:00.250Z"] * n,
        "amount": [str(i / 4) for i in range(n)],
        "count": [str(i % 5 + 1) for i in range(n)],
        "name": [" Ann "] * n,
        "tags": ["x|y"] * n,
    }
    block = process_block(rt, cols, n)
    assert block.fast and block.rows == list(range(n)) and not block.errors
    _same(rt, cols, n)


def test_one_bad_row_is_rejected_and_the_rest_kept(spec: ProjectSpec) -> None:
    rt = group_runtime(spec.group("user-events"))
    rows = [
        {
            "user_id": f"u{i}",
            "ts": "2024-03-01T10:00:00Z",
            "amount": 1.0,
            "count": 0 if i == 37 else 1,
            "name": "n",
            "tags": "t",
        }
        for i in range(100)
    ]
    block = process_many(rt, rows)
    assert block.rows == [i for i in range(100) if i != 37]
    assert [(i, e.field) for i, e in block.errors] == [(37, "score")]
    assert "ZeroDivisionError" in block.errors[0][1].message
