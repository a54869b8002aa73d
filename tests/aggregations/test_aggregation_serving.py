"""Serving aggregation features: the generated parser decodes each entity's state record and
finalizes it at the request time, so a count decays when events stop; ``fsgen get`` shows the
final values (``--as-of``); the values equal the training set's at the same instant."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from aggproject import (
    DAY,
    HOUR,
    T0,
    event_rows,
    iso,
    make,
    state_runtime,
    write_events,
    write_states,
)
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.codegen import generate
from fsgen.generated_imports import import_generated
from fsgen.pit import build_dataset
from fsgen.serving.sources import LocalRecordSource
from fsgen.store.local import LocalStore

EVENTS = [
    ("c1", T0 + 0.5 * HOUR, 1, {"amount": 10.0, "category": "books"}),
    ("c1", T0 + 2 * HOUR, 2, {"amount": 30.0, "category": "games"}),
    ("c1", T0 + 2 * HOUR, 3, {"amount": 0.0, "category": "books"}),
    ("c1", T0 + 30 * HOUR, 4, {"amount": 5.1, "category": "toys"}),
    ("c2", T0 + 1 * HOUR, 5, {"amount": 7.5, "category": "food"}),
]
WRITTEN = T0 + 30 * HOUR + 1
#: read times at or after every entity's newest event: exact for the online state
TIMES = [T0 + 30 * HOUR + 0.5, T0 + 30.5 * HOUR, T0 + 31 * HOUR, T0 + 3 * DAY, T0 + 40 * DAY]


def _project(make_project: Callable[..., Path]):  # type: ignore[no-untyped-def]
    config, spec = make(make_project)
    group = spec.group("purchases")
    rows = event_rows(group, EVENTS)
    with LocalStore.open(config, spec) as store:
        write_events(store, group, rows)
        states = write_states(store, group, rows, WRITTEN)
        store.put_records("profile", [{"customer_id": "c1", "updated_at": iso(T0), "tenure": 4}])
    generate(config, spec)
    return config, spec, states


def test_the_generated_parser_finalizes_at_request_time_as_the_training_set(
    make_project: Callable[..., Path],
) -> None:
    config, spec, _ = _project(make_project)
    parser = import_generated(config, "feature_sets.shop.parser")
    with LocalStore.open(config, spec) as store:
        store.adopt(state_runtime(spec.group("purchases")), online=True, offline=False)
        source = LocalRecordSource(store, clock=lambda: T0 + 100 * DAY)
        served: list[list[object]] = []
        for now in TIMES:
            for customer in ("c1", "c2", "c9"):
                request = {"customer_id": customer}
                response = source.batch_get_record(**parser.batch_get_request(request))
                served.append(parser.from_batch_get_record(response, request, now=now))
    labels = pd.DataFrame(
        {
            "customer_id": [c for _ in TIMES for c in ("c1", "c2", "c9")],
            "label_time": [iso(t) for t in TIMES for _ in range(3)],
        }
    )
    frame = build_dataset(config, spec, "shop", labels)
    columns = list(parser.COLUMNS)
    for row, vector in enumerate(served):
        for column, got in zip(columns, vector, strict=True):
            want = frame[column].iloc[row]
            where = (row, column, got, want)
            if isinstance(want, float) and math.isnan(want):
                assert got is None, where
            elif isinstance(got, list):
                assert got == list(want), where
            elif isinstance(got, float):
                assert abs(got - want) <= 4e-16 * abs(want), where
            elif got is None:
                assert pd.isna(want), where
            else:
                assert got == want, where
    c1 = dict(zip(columns, served[0], strict=True))
    assert c1["purchase_count_lifetime"] == 3 and c1["purchase_count_1h"] == 1
    later = dict(zip(columns, served[-3], strict=True))  # 40 days on: the windows decayed
    assert later["purchase_count_1h"] == 0 and later["avg_purchase_value_7d"] is None
    assert later["purchase_count_lifetime"] == 3 and later["last_categories_7d"] == []
    unknown = dict(zip(columns, served[2], strict=True))  # no state record: the empty state
    assert unknown["purchase_count_lifetime"] == 0 and unknown["tenure"] is None


def test_fsgen_get_shows_final_values_and_as_of(make_project: Callable[..., Path]) -> None:
    config, _, states = _project(make_project)
    runner = CliRunner()
    applied = runner.invoke(main, ["--project", str(config.root), "apply", "--auto-approve"])
    assert applied.exit_code == 0, applied.output
    base = ["--project", str(config.root), "get", "purchases", "c1", "--json"]
    result = runner.invoke(main, [*base, "--as-of", iso(T0 + 31 * HOUR)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["purchase_count_1h"] == 1 and shown["purchase_count_lifetime"] == 3
    assert isinstance(shown["state_written_at"], str)  # the state's write time: snake_case key
    assert all(" " not in key for key in shown), list(shown)
    assert shown["avg_purchase_value_1d"] == 5.1
    result = runner.invoke(main, [*base, "--as-of", iso(T0 + 40 * DAY)])
    assert json.loads(result.output)["purchase_count_1h"] == 0
    result = runner.invoke(main, [*base[:-1], "--feature", "purchase_count_lifetime"])
    assert result.exit_code == 0 and "purchase_count_lifetime  3" in result.output
    result = runner.invoke(main, [*base[:-1], "--feature", "purchase_count"])  # no window
    assert result.exit_code == 1
    assert (
        "no feature 'purchase_count' ('purchase_count' is an aggregation: its features are "
        "purchase_count_1h, purchase_count_lifetime)"
    ) in result.output
    result = runner.invoke(main, [*base[:-2], "c9"])
    assert result.exit_code == 1
    assert "no online aggregation state for 'c9': no record was ever written" in result.output
    assert states
    # at exactly the newest event (c1's at 30h) the state is exact; before it, refused
    result = runner.invoke(main, [*base, "--as-of", iso(T0 + 30 * HOUR)])
    assert result.exit_code == 0 and json.loads(result.output)["purchase_count_lifetime"] == 2
    result = runner.invoke(main, [*base, "--as-of", iso(T0 + 29 * HOUR)])
    assert result.exit_code == 1
    assert "holds events up to 2024-03-11T06:00:00Z, after --as-of 2024-03-11T05:00:00Z" in (
        result.output
    )
    # a query time may be as precise as a microsecond: 1 µs after the newest event counts it
    # (the skew check's and the demo's read "just after"), 1 µs before is refused
    result = runner.invoke(main, [*base, "--as-of", "2024-03-11T06:00:00.000001Z"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["purchase_count_lifetime"] == 3
    result = runner.invoke(main, [*base, "--as-of", "2024-03-11T05:59:59.999999Z"])
    assert result.exit_code == 1
    assert "after --as-of 2024-03-11T05:59:59.999999Z" in result.output
    result = runner.invoke(main, [*base, "--as-of", "2024-03-11T06:00:00.0000001Z"])
    assert result.exit_code == 1 and "more precise than microseconds" in result.output


def test_fsgen_get_as_of_before_the_newest_event_is_refused(
    make_project: Callable[..., Path],
) -> None:
    """An online state is exact only from its newest event on; an --as-of before it would show
    the newest event's answer under an earlier date, so get refuses it and names the way to
    historical values, as it does for a row group's newer record."""
    config, _, _ = _project(make_project)
    runner = CliRunner()
    base = ["--project", str(config.root)]
    assert runner.invoke(main, [*base, "apply", "--auto-approve"]).exit_code == 0
    base += ["get", "purchases", "c1"]
    result = runner.invoke(main, [*base, "--as-of", iso(T0 + 3 * HOUR)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        "error: purchases: the online state of 'c1' holds events up to 2024-03-11T06:00:00Z, "
        "after --as-of 2024-03-10T03:00:00Z"
    )
    assert "use `fsgen dataset` for older values" in result.output
    result = runner.invoke(main, [*base, "--as-of", iso(T0 + 30 * HOUR), "--json"])
    assert result.exit_code == 0, result.output  # at the newest event itself: exact
    assert json.loads(result.output)["purchase_count_lifetime"] == 2


def test_the_catalog_lists_aggregation_features_with_function_and_windows(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    config, _, _ = _project(make_project)
    out = tmp_path / "catalog"
    result = CliRunner().invoke(
        main, ["--project", str(config.root), "catalog", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = (out / "features" / "purchases" / "avg_purchase_value_7d.html").read_text()
    assert "<code>mean</code> of <code>Fractional</code> values over <code>7d</code>" in page
    assert "windows 1d, 7d; hop 3600s" in page and "avg_purchase_value__state" in page
    index = (out / "index.html").read_text()
    for name in ("avg_purchase_value_1d", "purchase_count_lifetime", "last_categories_7d"):
        assert name in index
    md = (config.root / "generated" / "catalog.md").read_text()
    assert "Average purchase value (mean over a 1d window, hop 3600s)" in md


def test_the_model_endpoint_reads_an_absent_state_as_the_empty_state(
    make_project: Callable[..., Path],
) -> None:
    """``serve-model`` and the skew check read through the endpoint: an entity with no state
    record gets the empty state's values (counts 0), as the parser and the training set do,
    not missing values."""
    from fsgen.serving.handler import load_handler

    config, spec, _ = _project(make_project)
    parser = import_generated(config, "feature_sets.shop.parser")
    now = T0 + 31 * HOUR
    with LocalStore.open(config, spec) as store:
        store.adopt(state_runtime(spec.group("purchases")), online=True, offline=False)
        source = LocalRecordSource(store, clock=lambda: now)
        handler = load_handler(config, spec, "shop", None, source, lambda: now)
        requests = [{"customer_id": c} for c in ("c1", "c9")]
        vectors = handler.endpoint.vectors(requests, now=now)
        parsed = [
            parser.from_batch_get_record(
                source.batch_get_record(**parser.batch_get_request(r)), r, now=now
            )
            for r in requests
        ]
    assert vectors == parsed
    unknown = dict(zip(parser.COLUMNS, vectors[1], strict=True))
    assert unknown["purchase_count_lifetime"] == 0 and unknown["purchase_count_1h"] == 0
    assert unknown["last_categories_7d"] == [] and unknown["tenure"] is None


def test_a_state_of_another_definition_is_named_by_group_and_entity(
    make_project: Callable[..., Path],
) -> None:
    """After a window or function change a stored state is refused until a backfill: fsgen get
    and the skew check say whose state (group and entity), not only which aggregation, and
    the skew check fails instead of stopping on a bare message."""
    config, spec, states = _project(make_project)
    group = spec.group("purchases")
    text = states["c1"]["avg_purchase_value__state"]
    body = json.loads(text)
    body[1] = "0" * len(str(body[1]))  # the fingerprint of another definition
    old = json.dumps(body, separators=(",", ":"))
    with LocalStore.open(config, spec) as store:
        store.adopt(state_runtime(group), online=True, offline=False)
        store.put_records(
            "purchases",
            [
                {
                    "customer_id": "c1",
                    "purchased_at": iso(WRITTEN + 1),
                    **states["c1"],
                    "avg_purchase_value__state": old,
                }
            ],
        )
    runner = CliRunner()
    base = ["--project", str(config.root)]
    assert runner.invoke(main, [*base, "apply", "--auto-approve"]).exit_code == 0
    result = runner.invoke(main, [*base, "get", "purchases", "c1"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "error: purchases: the online state of 'c1' cannot be read: state of "
        "'avg_purchase_value' was built for another definition of it"
    ), result.output
    assert "(fsgen backfill purchases)" in result.output, result.output  # the group named
    result = runner.invoke(main, [*base, "skew-check", "shop"])
    assert result.exit_code == 1
    assert "(fsgen backfill purchases)" in result.output, result.output
    assert (
        "UNREADABLE purchases 'c1' avg_purchase_value__state: state of 'avg_purchase_value' "
        "was built for another definition of it" in result.output
    ), result.output
    assert "Traceback" not in result.output


def test_fsgen_get_says_when_the_state_is_ahead_of_now(make_project: Callable[..., Path]) -> None:
    """Events up to a day ahead of the clock are taken (a producer's clock ahead); a state
    holding one answers as of that event, as serving does. fsgen get says so on stderr rather
    than show those values as now's; a state behind now gets no note."""
    import time

    config, spec = make(make_project)
    group = spec.group("purchases")
    ahead = time.time() + 2 * HOUR
    events = [
        ("c1", ahead, 1, {"amount": 3.0, "category": "books"}),
        ("c2", ahead - 30 * DAY, 2, {"amount": 4.0, "category": "books"}),
    ]
    rows = event_rows(group, events)
    with LocalStore.open(config, spec) as store:
        write_events(store, group, rows)
        write_states(store, group, rows, time.time())
    generate(config, spec)
    runner = CliRunner()
    base = ["--project", str(config.root)]
    assert runner.invoke(main, [*base, "apply", "--auto-approve"]).exit_code == 0
    result = runner.invoke(main, [*base, "get", "purchases", "c1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["purchase_count_lifetime"] == 0  # the event is at the mark
    assert result.stderr.startswith(
        f"note: purchases: the online state of 'c1' holds events up to {iso(ahead)[:-5]}"
    ), result.stderr
    assert "the values are as of that newest event" in result.stderr
    result = runner.invoke(main, [*base, "get", "purchases", "c2"])
    assert result.exit_code == 0 and result.stderr == ""
