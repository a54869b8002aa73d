"""``fsgen skew-check``: passes on consistent data, fails (exit 1, mismatch named by feature)
when serving and training disagree."""

from __future__ import annotations

import json
import math
import struct

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from inference_helpers import FEATURE_SET, Project

from fsgen.cli import main
from fsgen.runtime.encoding import FRACTIONAL, INTEGRAL, STRING
from fsgen.serving.handler import ServingError, load_handler
from fsgen.serving.skew import same, skew_check
from fsgen.serving.sources import LocalRecordSource


def run(project: Project, *args: str) -> tuple[int, dict[str, object] | str]:
    result = CliRunner().invoke(
        main,
        ["--project", str(project.root), "skew-check", FEATURE_SET, *args],
        catch_exceptions=False,
    )
    if "--json" in args:
        return result.exit_code, json.loads(result.stdout)
    return result.exit_code, result.output


def test_consistent_store_passes(project: Project) -> None:
    code, report = run(project, "--sample", "40", "--json")
    assert code == 0, report
    assert isinstance(report, dict)
    assert report["ok"] is True and report["rows"] == 40 and report["mismatches"] == []
    assert report["compared_values"] == 40 * 8
    code, text = run(project, "--sample", "5")
    assert code == 0 and "OK: training = serving" in str(text)


def online_only_put(project: Project, group: str, record_id: str, **changes: object) -> None:
    """A write that reaches the online store only (PutRecord with TargetStores=[OnlineStore]),
    at the same event time: the offline store keeps the old value."""
    with project.store() as store:
        rt = store.runtime(group)
        record = dict(store.get_record(group, record_id, now=project.as_of) or {})
        record.update(changes)
        online = store.online
        con = online.connection()
        con.execute("BEGIN IMMEDIATE")
        online.upsert(
            con,
            rt,
            online.rows_for(rt, {k: [v] for k, v in record.items()}, [rt.event_seconds(record)]),
        )
        con.execute("COMMIT")


def test_one_ulp_online_drift_fails_by_feature(project: Project) -> None:
    with project.store() as store:
        before = store.get_record("customer-features", "C007", now=project.as_of)
    assert before is not None
    drifted = math.nextafter(float(before["avg_monthly_spend"]), math.inf)  # type: ignore[arg-type]
    online_only_put(project, "customer-features", "C007", avg_monthly_spend=drifted)
    labels = project.root / "pairs.csv"
    labels.write_text("customer_id,merchant_id,amount\nC007,M01,10.0\nC008,M01,10.0\n")
    code, report = run(project, "--labels", str(labels), "--json")
    assert code == 1
    assert isinstance(report, dict) and report["ok"] is False and report["rows"] == 2
    by_feature = report["mismatches_by_feature"]
    assert by_feature["avg_monthly_spend"] == 1
    # the on-demand feature reads avg_monthly_spend, so it drifts with it
    assert (
        sum(by_feature.values())
        == by_feature["avg_monthly_spend"] + by_feature["amount_to_monthly_spend"]
    )
    first = report["mismatches"][0]  # type: ignore[index]
    assert first["keys"] == {"customer_id": "C007", "merchant_id": "M01"}
    assert first["online"] == drifted and first["training"] == before["avg_monthly_spend"]
    code, text = run(project, "--labels", str(labels))
    assert code == 1 and "FAIL avg_monthly_spend: 1 mismatch" in str(text)


def test_changed_string_online_is_caught(project: Project) -> None:
    online_only_put(project, "merchant-features", "M02", category="travel ")
    code, report = run(project, "--sample", "60", "--seed", "3", "--json")
    assert code == 1 and isinstance(report, dict)
    counts = report["mismatches_by_feature"]
    assert counts["category"] > 0 and counts["age"] == 0  # type: ignore[index]


def test_definitions_changed_after_generation_fail(project: Project) -> None:
    """A default changed in the definitions without regenerating: the handler that would
    serve is stale, and the check (and serve-model) refuse it."""
    fraud = project.root / "featuredefs" / "fraud.py"
    fraud.write_text(fraud.read_text().replace("age: -1,", "age: -2,"))
    code, report = run(project, "--sample", "5", "--json")
    assert code == 1 and isinstance(report, dict)
    assert report["stale"] and "fsgen generate" in str(report["stale"])
    from fsgen.loader import load

    spec = load(project.root)
    with project.store() as store, pytest.raises(ServingError, match="fsgen generate"):
        load_handler(project.config, spec, FEATURE_SET, None, LocalRecordSource(store))


def test_expired_partner_record_is_missing_on_both_sides(project: Project) -> None:
    """A merchant updated 10 days before the customer: at the label time (the customer's
    event time) the merchant is past its 7-day TTL in both the online read and the dataset."""
    with project.store() as store:
        old = dict(store.get_record("merchant-features", "M04", now=project.as_of) or {})
        old.update(merchant_id="M99", updated_at=project.as_of - 10 * 86400)
        store.put_records("merchant-features", [old])
    labels = project.root / "old.csv"
    labels.write_text("customer_id,merchant_id,amount\nC000,M99,1.0\n")
    report = skew_check(project.config, project.spec, FEATURE_SET, labels=labels)
    assert report.ok and report.rows == 1


def test_sampling_is_deterministic_and_needs_records(project: Project) -> None:
    first = skew_check(project.config, project.spec, FEATURE_SET, sample=7, seed=5)
    second = skew_check(project.config, project.spec, FEATURE_SET, sample=7, seed=5)
    assert first.to_dict() == second.to_dict() and first.ok


def test_sampled_rows_are_distinct_and_at_most_the_stored_pairs(project: Project) -> None:
    """--sample larger than the store compares each (customer, merchant) pair once, instead of
    drawing the same few entities again and reporting the repeats as rows compared."""
    pairs = len(project.customers) * len(project.merchants)
    report = skew_check(project.config, project.spec, FEATURE_SET, sample=pairs + 300)
    assert report.ok and report.rows == pairs
    code, text = run(project, "--sample", str(pairs + 300))
    assert code == 0 and f"{pairs} rows x 8 features compared" in str(text)


def test_an_empty_labels_file_is_a_clear_error(project: Project) -> None:
    labels = project.root / "empty.csv"
    labels.write_text("")
    result = CliRunner().invoke(
        main, ["--project", str(project.root), "skew-check", FEATURE_SET, "--labels", str(labels)]
    )
    assert result.exit_code == 1
    assert result.output == (
        f"error: {labels}: the labels file is empty; it needs a header naming the key columns "
        "(customer_id, merchant_id) and a row per entity to compare\n"
    )


def test_negative_zero_survives_both_stores(project: Project) -> None:
    with project.store() as store:
        record = dict(store.get_record("customer-features", "C005", now=project.as_of) or {})
        record.update(avg_monthly_spend=-0.0, last_updated_time="2099-01-01T00:00:00Z")
        store.put_records("customer-features", [record])
    labels = project.root / "zero.csv"
    labels.write_text("customer_id,merchant_id,amount\nC005,M01,1.0\n")
    report = skew_check(project.config, project.spec, FEATURE_SET, labels=labels)
    assert report.ok, report.render()


# ------------------------------------------------------------------------------ comparator

floats = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=200, deadline=None)
@given(floats, floats)
def test_float_comparison_is_bitwise(a: float, b: float) -> None:
    assert same((FRACTIONAL, False), a, b) == (struct.pack("<d", a) == struct.pack("<d", b))


def test_comparator_types_and_missing() -> None:
    assert not same((FRACTIONAL, False), 0.0, -0.0)
    assert not same((FRACTIONAL, False), 1, 1.0)
    assert not same((INTEGRAL, False), 1, 1.0)
    assert not same((INTEGRAL, False), True, 1)
    assert same((STRING, False), None, None) and not same((STRING, False), "", None)
    assert same((FRACTIONAL, True), [0.1, 0.2], [0.1, 0.2])
    assert not same((FRACTIONAL, True), [0.1, 0.2], [0.1])
    assert not same((INTEGRAL, True), [1], None)


def test_rewrite_at_the_same_event_time_stays_consistent(project: Project) -> None:
    """PutRecord of a changed record at the same event time reaches both stores: online the
    later write wins, and the point-in-time join breaks the tie the same way."""
    with project.store() as store:
        record = dict(store.get_record("customer-features", "C009", now=project.as_of) or {})
        record["avg_monthly_spend"] = 0.1 + 0.2
        store.put_records("customer-features", [record])
    labels = project.root / "same.csv"
    labels.write_text("customer_id,merchant_id,amount\nC009,M03,7.0\n")
    report = skew_check(project.config, project.spec, FEATURE_SET, labels=labels)
    assert report.ok and report.rows == 1, report.render()
    with project.store() as store:
        assert (
            store.get_record("customer-features", "C009", now=project.as_of)["avg_monthly_spend"]
            == 0.1 + 0.2
        )  # type: ignore[index]
