"""The read cache (``finalize_text``) gives exactly the answer of decoding and finalizing the
state string again, at every read time, before and after the watermark, on tile edges."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_aggregation_property import DEFS, ENTITIES, histories, same

from fsgen.runtime.aggregate import (
    AggregationDef,
    AggregationState,
    finalize_record,
    finalize_text,
)


@settings(max_examples=80, deadline=None)
@given(histories(), st.lists(st.integers(-5, 60), min_size=1, max_size=8))
def test_cached_answers_equal_fresh_ones(
    history: tuple[list[dict[str, object]], list[tuple[str, int]]], times: list[int]
) -> None:
    arrivals, _ = history
    for d in DEFS:
        for entity in ENTITIES:
            state = AggregationState(d)
            for e in arrivals:
                if e["entity"] == entity:
                    state.apply(
                        int(e["ts"]), int(e["seq"]), str(e["hash"]), e["values"][d.value_column]
                    )  # type: ignore[call-overload,index]
            text = state.encode()
            for t in [*times, *(int(e["ts"]) for e in arrivals)]:
                fresh = AggregationState.decode(d, text).finalize(t)
                for _ in range(2):  # the second read is answered from the cache
                    cached = finalize_text(d, text, t)
                    assert cached.keys() == fresh.keys()
                    for name in fresh:
                        assert same(cached[name], fresh[name]), (d.name, name, t)
                    for value in cached.values():
                        if isinstance(value, list):
                            value.append("changed by a caller")
            record = {d.state_column: text}
            assert finalize_record([d], record, 7) == AggregationState.decode(d, text).finalize(7)


@settings(max_examples=80, deadline=None)
@given(histories(), st.integers(0, 6))
def test_a_state_kept_after_encoding_is_the_decoded_one(
    history: tuple[list[dict[str, object]], list[tuple[str, int]]], every: int
) -> None:
    """The stream keeps the states it wrote (fsgen.runtime.aggwrite._WRITTEN) instead of
    decoding its own strings again: that is only right if encoding leaves a state equal to
    what decoding the string gives. Applying the same events to the kept state and to one
    decoded after every write gives the same strings throughout."""
    arrivals, _ = history
    for d in DEFS:
        for entity in ENTITIES:
            kept = AggregationState(d)
            decoded = AggregationState(d)
            for i, e in enumerate(a for a in arrivals if a["entity"] == entity):
                args = (int(e["ts"]), int(e["seq"]), str(e["hash"]), e["values"][d.value_column])  # type: ignore[index]
                kept.apply(*args)  # type: ignore[arg-type]
                decoded.apply(*args)  # type: ignore[arg-type]
                if every and i % every == 0:
                    text = decoded.encode()
                    assert kept.encode() == text, d.name
                    assert kept == AggregationState.decode(d, text), d.name
                    decoded = AggregationState.decode(d, text)
            assert kept.encode() == decoded.encode(), d.name


def test_the_kept_states_are_bounded_by_their_strings_size(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The kept states are dropped once their strings pass WRITTEN_CHARS (a dense state is
    tens of kilobytes of Python objects); a dropped state is simply decoded again."""
    from fsgen.runtime import aggwrite

    monkeypatch.setattr(aggwrite, "_WRITTEN", {})
    monkeypatch.setattr(aggwrite, "_written_chars", 0)
    d = DEFS[0]
    states = []
    for i in range(6):
        state = AggregationState(d)
        state.apply(1_700_000_000_000_000 + i, i + 1, f"h{i}", 1.0 if i % 2 else 2.0)
        states.append(state)
    texts = [s.encode() for s in states]
    monkeypatch.setattr(aggwrite, "WRITTEN_CHARS", len(texts[0]) * 3 + 1)
    for s, text in zip(states, texts, strict=True):
        aggwrite._keep([s], {d.state_column: text})
        assert aggwrite._written_chars <= aggwrite.WRITTEN_CHARS
    assert 1 <= sum(len(kept) for kept in aggwrite._WRITTEN.values()) <= 3
    for text in texts:  # kept or not, the state taken is the one the string holds
        assert aggwrite._take(d, text).encode() == text


def test_the_read_cache_keeps_answers_not_decoded_columns() -> None:
    """Thousands of cached states' decoded columns (a list per exact sum of a tile) stayed
    tracked by the garbage collector and made its passes long; the cache keeps a state's
    watermark and answers only, a few objects whatever the state's size."""
    import gc

    from fsgen.runtime import aggread

    hour = 3_600_000_000
    d = AggregationDef(  # tiles whose exact sums are lists of doubles, 60 of them kept
        name="fsum",
        function="sum",
        value_kind="Fractional",
        windows=(100 * hour,),
        hop=hour,
        lateness=hour,
    )
    texts = []
    for i in range(200):
        state = AggregationState(d)
        for k in range(180):  # three events a tile: most tiles' sums are not one double
            state.apply((k // 3) * hour + i, k, f"h{k}", 0.1 * (k + 1) + i)
        texts.append(state.encode())
    aggread._CACHE.clear()
    gc.collect()
    before = len(gc.get_objects())
    for text in texts:
        finalize_text(d, text, 61 * hour)
    gc.collect()
    per_entry = (len(gc.get_objects()) - before) / len(texts)
    assert len(aggread._CACHE) == len(texts)
    assert per_entry < 8, per_entry
    for text in texts:  # and the cached answers are still those of a fresh decode
        fresh = AggregationState.decode(d, text).finalize(61 * hour)
        cached = finalize_text(d, text, 61 * hour)
        assert all(same(cached[n], fresh[n]) for n in fresh)
