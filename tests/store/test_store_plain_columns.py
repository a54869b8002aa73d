"""Columns a reader proved plain (:class:`fsgen.runtime.bulk.PlainColumn`) are taken by the
fast path as they are, only for the type they were proven for, and a stored pass-through
column is the reader's own Arrow column only when it holds the same values in the store's
type."""

from __future__ import annotations

import pyarrow as pa
import pytest

from fsgen.runtime.bulk import PlainColumn, _coerce_column, _Slow
from fsgen.runtime.chunks import Chunk, parsed_numbers
from fsgen.store import offline


def test_numbers_parsed_by_arrow_are_plain_only_when_finite() -> None:
    ints = parsed_numbers(pa.chunked_array([pa.array(["1", "-20", "3"])]), "int")
    assert isinstance(ints, PlainColumn) and ints == [1, -20, 3] and ints.type_name == "int"
    floats = parsed_numbers(pa.chunked_array([pa.array(["1.5", "2e3"])]), "float")
    assert isinstance(floats, PlainColumn) and floats == [1.5, 2000.0]
    huge = parsed_numbers(pa.chunked_array([pa.array(["1.5", "1e400"])]), "float")
    assert huge is not None and not isinstance(huge, PlainColumn)
    with pytest.raises(_Slow):  # the fast path checks it and gives the block to the row path
        _coerce_column("float", huge, 2)


def test_a_plain_column_is_taken_only_for_its_own_type() -> None:
    text = PlainColumn(["1", "2"], "str")
    assert _coerce_column("str", text, 2) is text
    assert _coerce_column("int", text, 2) == [1, 2]  # coerced as any text column is
    with pytest.raises(_Slow):  # not the block's length
        _coerce_column("str", text, 3)


def test_null_free_text_of_a_str_field_carries_its_arrow_column() -> None:
    table = pa.table({"id": ["a", "b"], "n": ["1", "x"], "maybe": pa.array(["c", None])})
    typed = Chunk("src", 1, table, 2).typed_columns({"id": "str", "n": "int", "maybe": "str"})
    assert isinstance(typed["id"], PlainColumn) and typed["id"].source is not None
    assert not isinstance(typed["n"], PlainColumn)  # 'x': left to the fast path's checks
    assert not isinstance(typed["maybe"], PlainColumn)  # a null is a missing value


def test_records_table_stores_the_source_column_only_in_the_stores_type() -> None:
    source = pa.chunked_array([pa.array(["a", "b"])])
    same = PlainColumn(["a", "b"], "str", source)
    assert offline._arrow(same, pa.string()) is source
    other = PlainColumn(["1", "2"], "str", pa.chunked_array([pa.array(["1", "2"])]))
    assert offline._arrow(other, pa.large_string()).type == pa.large_string()
    short = PlainColumn(["a"], "str", source)
    assert offline._arrow(short, pa.string()).to_pylist() == ["a"]
