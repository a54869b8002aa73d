"""FS109's default check against an independent oracle: the dataset builder's own fill. For any
value and scalar dtype, a default the check accepts fills a null Arrow column of that type
(through the builder's typed_default) and reads back equal; one it rejects does not fill, or is
a bool (refused on purpose: Arrow would silently read True as 1 or 1.0)."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsgen.pit.dataset import arrow_type, typed_default
from fsgen.types import Fractional, Integral, String
from fsgen.validate import default_problem

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


def fills(dtype: object, value: object) -> bool:
    column = pa.array([None, None], type=arrow_type(dtype))  # type: ignore[arg-type]
    try:
        filled = pc.fill_null(column, pa.scalar(typed_default(dtype, value), type=column.type))  # type: ignore[arg-type]
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return False
    got = filled.to_pylist()[0]
    return got == value or (isinstance(got, float) and math.isclose(got, float(value)))  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [Integral, Fractional, String], ids=str)
@given(value=VALUES)
def test_accepted_defaults_fill_and_rejected_ones_do_not(dtype: object, value: object) -> None:
    problem = default_problem(dtype, value)  # type: ignore[arg-type]
    if value is None:
        assert problem is None
    elif problem is None:
        assert fills(dtype, value)
    else:
        assert isinstance(value, bool | list) or not fills(dtype, value)
