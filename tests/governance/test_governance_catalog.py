"""The HTML catalog: every page, every link, no external resource, and the content reviewers
rely on (lineage, PII, transformation, artifacts, history, statistics against an oracle)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from governance_catalog_html import read, text_of
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.backends import open_backend
from fsgen.catalog import build_catalog, write_catalog
from fsgen.catalog.stats import BINS
from fsgen.cli import main
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.pii import plan_annotations
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.store import LocalStore


def _apply(root: Path) -> None:
    config, spec = load_config(root), load(root)
    backend = open_backend(config, "local")
    apply_plan(config, spec, backend, compute_plan(config, spec, backend), regenerate=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The example project applied and ingested, and its catalog."""
    import shutil

    repo = Path(__file__).resolve().parents[2]
    root = tmp_path_factory.mktemp("cat") / "example"
    root.mkdir()
    shutil.copy(repo / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        repo / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(repo / "data", root / "data")
    _apply(root)
    config, spec = load_config(root), load(root)
    with LocalStore.open(config, spec) as store:
        store.ingest(
            "customer-features", root / "data/customers_with_errors.csv", root / "rejects.jsonl"
        )
        store.ingest("merchant-features", root / "data/merchants.jsonl")
    out = root / "catalog"
    result = CliRunner().invoke(
        main, ["--project", str(root), "catalog", "--output", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert (out / "index.html").resolve().as_uri() in result.stdout
    return root, out


def test_every_page_exists_and_every_link_resolves(built: tuple[Path, Path]) -> None:
    _, out = built
    pages = sorted(out.rglob("*.html"))
    names = {p.relative_to(out).as_posix() for p in pages}
    assert {
        "index.html",
        "groups/customer-features.html",
        "groups/merchant-features.html",
        "features/customer-features/age.html",
        "features/merchant-features/is_high_risk.html",
        "on-demand/amount_to_monthly_spend.html",
        "feature-sets/fraud-model.html",
    } <= names
    # index, groups, row features, aggregation windows, on-demand, feature sets
    assert len(names) == 1 + 3 + 7 + 5 + 1 + 2
    for path in pages:
        page = read(path)
        for resource in page.resources:
            pytest.fail(f"{path}: external or separate resource {resource}")
        for link in page.links:
            assert not link.startswith(("http:", "https:", "//")), f"{path}: {link}"
            target = unquote(link.split("#", 1)[0])
            if target:
                assert (path.parent / target).resolve().is_file(), f"{path}: broken {link}"


def test_index_search_rows_carry_name_owner_tags_and_pii(built: tuple[Path, Path]) -> None:
    _, out = built
    rows = {r["text"].split()[0]: r for r in read(out / "index.html").rows}
    age = rows["customer-features:age"]
    assert (age["type"], age["owner"], age["pii"]) == ("feature", "growth-ml", "personal")
    assert "domain=customer" in age["tags"].split()
    assert rows["merchant-features:category"]["pii"] == "none"
    assert rows["fraud-model"]["type"] == "feature set"
    assert rows["amount_to_monthly_spend"]["owner"] == "risk-ml"
    page = read(out / "index.html")
    assert "customer-features:age" in text_of(page, "personal")


def test_feature_page_lineage_transformation_and_pii(built: tuple[Path, Path]) -> None:
    root, out = built
    spec = load(root)
    age = spec.group("customer-features").feature("age")
    page = read(out / "features/customer-features/age.html")
    assert text_of(page, "raw-inputs").split() == ["birth_date", "last_updated_time"]
    assert "../../feature-sets/fraud-model.html" in page.links
    assert text_of(page, "logic-hash") == age.logic_hash
    assert "def age(birth_date: str, last_updated_time: str) -> int:" in text_of(page, "source")
    assert text_of(page, "pii") == "personal"
    assert "Personal data (personal)" in page.text
    assert "growth-ml" in page.text and "Integral" in page.text
    risky = read(out / "features/merchant-features/chargeback_rate.html")
    assert "is_high_risk.html" in " ".join(risky.links)  # downstream feature
    high = read(out / "features/merchant-features/is_high_risk.html")
    assert "chargeback_rate.html" in " ".join(high.links)  # upstream feature
    assert text_of(high, "raw-inputs").split() == ["chargebacks", "transactions"]


def test_artifacts_and_history(built: tuple[Path, Path]) -> None:
    _, out = built
    page = read(out / "groups/customer-features.html")
    for path in (
        "generated/groups/customer_features/batch_job.py",
        "generated/feature_sets/fraud_model/parser.py",
        "generated/catalog.json",
        "generated/iam/batch_ingestion.json",
    ):
        assert path in page.text
    assert "generated/groups/merchant_features" not in page.text
    history = text_of(page, "history")
    assert "apply (create)" in history and "applied" in history
    from fsgen import audit

    (ingest,) = audit.query(load_config(built[0]), kind="ingest", group="customer-features")
    assert ingest.details["rejected"] > 0 and ingest.summary in history
    assert "rejects.jsonl" in history
    feature = read(out / "features/customer-features/age.html")
    assert "generated/iam" not in feature.text  # policies name groups, not features
    assert "apply (create)" in text_of(feature, "history")


def test_statistics_match_a_pandas_oracle(built: tuple[Path, Path]) -> None:
    root, out = built
    raw = pd.read_json(root / "data/merchants.jsonl", lines=True)
    visible = raw.drop_duplicates(["merchant_id", "updated_at"], keep="last")
    rate = visible["chargebacks"] / visible["transactions"].clip(lower=1)
    catalog = build_catalog(load_config(root), load(root))
    group = next(g for g in catalog.groups if g["name"] == "merchant-features")
    stats = next(f for f in group["features"] if f["name"] == "chargeback_rate")["stats"]
    assert stats["rows"] == len(visible) and stats["nulls"] == 0
    assert stats["min"] == pytest.approx(rate.min()) and stats["max"] == pytest.approx(rate.max())
    assert stats["mean"] == pytest.approx(rate.mean())
    expected, _ = np.histogram(rate, bins=BINS, range=(rate.min(), rate.max()))
    assert [b["count"] for b in stats["bars"]] == expected.tolist()
    category = next(f for f in group["features"] if f["name"] == "category")["stats"]
    top = visible["mcc_description"].str.strip().str.lower().value_counts()
    assert category["distinct"] == len(top)
    assert {k: category["bars"][0][k] for k in ("label", "count")} == {
        "label": top.index[0],
        "count": int(top.iloc[0]),
    }
    page = read(out / "features/merchant-features/chargeback_rate.html")
    assert text_of(page, "stat-rows") == str(len(visible))
    assert (out / "features/merchant-features/chargeback_rate.html").read_text().count(
        "<rect"
    ) == BINS


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=60
    )
)
def test_histogram_counts_every_value_once(values: list[float]) -> None:
    import duckdb

    from fsgen.catalog.stats import histogram

    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE v (x DOUBLE)")
    con.executemany("INSERT INTO v VALUES (?)", [[x] for x in values])
    bars = histogram(con, '"x"', min(values), max(values))
    assert sum(b.count for b in bars) == len(values)
    assert bars[0].low == min(values) and bars[-1].high == max(values)


ESCAPE_DEFS = """\
from fsgen import Entity, FeatureGroup, Integral, String

user = Entity("user_id", String, description="u")
g = FeatureGroup("grp", entity=user, event_time="ts", owner="<b>team</b>",
                 description="<script>alert(1)</script>")


@g.feature(Integral, description="x < y & <i>z</i>", pii="pseudonymous", tags={"k": "v w"})
def f(x: int) -> int:
    return x
"""


def test_text_is_escaped_and_stale_pages_are_removed(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project({"featuredefs/defs.py": ESCAPE_DEFS})
    out = tmp_path / "site"
    (out / "features/gone").mkdir(parents=True)
    (out / "features/gone/old.html").write_text("old")
    (out / "notes.txt").write_text("kept")
    write_catalog(load_config(root), load(root), out)
    assert not (out / "features/gone/old.html").exists() and (out / "notes.txt").exists()
    for path in out.rglob("*.html"):
        html = path.read_text()
        assert "<script>alert" not in html and "<b>team" not in html and "<i>z" not in html
    page = read(out / "features/grp/f.html")
    assert "x < y & <i>z</i>" in page.text and "k=v w" in page.text
    assert "No offline data yet" in page.text


def test_pii_changes_are_flagged_in_plan_and_catalog(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project({"featuredefs/defs.py": ESCAPE_DEFS})
    config = load_config(root)
    created = compute_plan(config, load(root), open_backend(config, "local"), artifacts=False)
    assert plan_annotations(created) == [
        "PII review: personal data is added or reclassified:",
        "  ! grp.f: new feature -> pseudonymous, served online",
    ]
    _apply(root)
    defs = root / "featuredefs/defs.py"
    defs.write_text(defs.read_text().replace('pii="pseudonymous"', 'pii="personal"'))
    spec = load(root)
    plan = compute_plan(config, spec, open_backend(config, "local"), artifacts=False)
    assert plan_annotations(plan) == [
        "PII review: personal data is added or reclassified:",
        "  ! grp.f: pseudonymous -> personal (stricter), served online",
    ]
    _apply(root)
    defs.write_text(defs.read_text().replace('pii="personal"', 'pii="none"'))
    plan = compute_plan(config, load(root), open_backend(config, "local"), artifacts=False)
    assert plan_annotations(plan)[1] == "  ! grp.f: personal -> none (relaxed: review the reason)"
    write_catalog(config, load(root), tmp_path / "site")
    history = text_of(read(tmp_path / "site/features/grp/f.html"), "history")
    assert 'PII change features.f.parameters.fsgen:pii: "pseudonymous" -> "personal"' in history
    unchanged = compute_plan(config, spec, open_backend(config, "local"), artifacts=False)
    assert plan_annotations(unchanged) == []


def test_catalog_json_agrees_with_pages(built: tuple[Path, Path]) -> None:
    """The HTML is built from the same data as generated/catalog.json."""
    root, _ = built
    from fsgen.codegen.catalog import catalog_data

    data = json.loads(json.dumps(catalog_data(load(root))))
    catalog = build_catalog(load_config(root), load(root), stats=False)
    for g_json, g in zip(data["groups"], catalog.groups, strict=True):
        assert [f["name"] for f in g_json["features"]] == [f["name"] for f in g["features"]]
        assert [f["pii"] for f in g_json["features"]] == [f["pii"] for f in g["features"]]


def test_an_aggregation_window_page_shows_the_values_aggregated(example_project: Path) -> None:
    """A window's page has the statistics of its aggregation's values, one per event: two
    purchases at one time are two events, the same file ingested again adds none (before,
    the page said 'No offline data yet' and the group counted one row per time)."""
    root = example_project
    _apply(root)
    events = root / "events.csv"
    events.write_text(
        "customer_id,purchased_at,amount\n"
        "C1,2024-03-01T00:00:00Z,5.0\n"
        "C1,2024-03-01T00:00:00Z,5.0\n"
        "C2,2024-03-01T00:10:00Z,7.0\n"
    )
    config, spec = load_config(root), load(root)
    with LocalStore.open(config, spec) as store:
        store.ingest("purchases", events)
        store.ingest("purchases", events)  # the same rows again: copies, no new event
    out = root / "catalog"
    write_catalog(config, spec, out)
    page = read(out / "features/purchases/avg_purchase_value_7d.html")
    assert "avg_purchase_value__value" in text_of(page, "stat-values")
    assert (text_of(page, "stat-rows"), text_of(page, "stat-nulls").split()[0]) == ("3", "0")
    assert (text_of(page, "stat-min"), text_of(page, "stat-max")) == ("5", "7")
    assert "offline data 3 rows, 2 records" in read(out / "groups/purchases.html").text
