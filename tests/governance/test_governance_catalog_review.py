"""The catalog under change and under review: it survives a schema change before data with
the new column exists, withholds value statistics of personal data unless a reviewed opt-in
publishes them, and shows tags, PII and history on every page that needs them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from governance_catalog_html import read, text_of

from fsgen.cli import main

REPO = Path(__file__).resolve().parents[2]

DEFS = """\
from fsgen import Entity, FeatureGroup, Integral, Online, String

user = Entity("user_id", String, description="u")
clicks = FeatureGroup("clicks", entity=user, event_time="ts", owner="o", description="d",
                      online=Online(ttl="1d"), tags={"domain": "web"})


@clicks.feature(Integral, description="n", tags={"unit": "count"})
def n_clicks(n: int) -> int:
    return n
"""

ADDED = """

@clicks.feature(Integral, description="minutes on site")
def minutes(m: int) -> int:
    return m
"""


def _cli(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--project", str(root), *args])
    return result.exit_code, result.stdout, result.stderr


def test_catalog_survives_a_feature_added_after_the_last_ingestion(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project({"featuredefs/defs.py": DEFS})
    (root / "rows.csv").write_text(
        "user_id,ts,n\na,2024-05-01T00:00:00Z,3\nb,2024-05-01T00:00:00Z,4\n"
    )
    assert _cli(root, "apply", "--auto-approve")[0] == 0
    assert _cli(root, "ingest", "clicks", str(root / "rows.csv"))[0] == 0
    defs = root / "featuredefs/defs.py"
    defs.write_text(defs.read_text() + ADDED)
    assert _cli(root, "apply", "--auto-approve")[0] == 0
    code, _, err = _cli(root, "catalog", "--output", str(tmp_path / "site"))
    assert code == 0, err
    page = read(tmp_path / "site/features/clicks/minutes.html")
    assert text_of(page, "stat-rows") == "2"
    assert "Not in the offline store yet" in text_of(page, "stat-absent")
    assert text_of(read(tmp_path / "site/features/clicks/n_clicks.html"), "stat-min") == "3"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review") / "example"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "data", root / "data")
    assert _cli(root, "apply", "--auto-approve")[0] == 0
    assert _cli(root, "ingest", "customer-features", str(root / "data/customers.csv"))[0] == 0
    assert _cli(root, "ingest", "merchant-features", str(root / "data/merchants.jsonl"))[0] == 0
    return root


def _site(root: Path, out: Path) -> Path:
    code, _, err = _cli(root, "catalog", "--output", str(out))
    assert code == 0, err
    return out


def test_personal_value_statistics_are_withheld_by_default(example: Path, tmp_path: Path) -> None:
    out = _site(example, tmp_path / "site")
    html = (out / "features/customer-features/age.html").read_text()
    page = read(out / "features/customer-features/age.html")
    assert "Value statistics withheld" in text_of(page, "withheld")
    assert text_of(page, "stat-rows") == "404" and text_of(page, "stat-nulls") == "0 (0.0%)"
    for leak in ("stat-min", "stat-max", "stat-mean", "<svg", "counts per bin"):
        assert leak not in html, leak
    group = (out / "groups/customer-features.html").read_text()
    age_row = group.split('age.html">age</a>', 1)[1].split("</tr>", 1)[0]
    assert age_row.rstrip().endswith(  # the null rate, but no mean
        '<td>0.0%</td><td><span class="muted">withheld (personal)</span></td>'
    )
    # a feature of class none keeps its full statistics
    spend = (out / "features/customer-features/avg_monthly_spend.html").read_text()
    assert "stat-mean" in spend and "<svg" in spend and "withheld" not in spend.split("<main")[1]


def test_a_reviewed_opt_in_publishes_them_and_names_the_reason(
    example: Path, tmp_path: Path
) -> None:
    pyproject = example / "pyproject.toml"
    original = pyproject.read_text()
    try:
        pyproject.write_text(
            original + '\n[tool.fsgen.catalog.value_statistics]\n"customer-features:age" = '
            '"privacy review PRIV-12: age histogram approved"\n'
        )
        out = _site(example, tmp_path / "site")
        html = (out / "features/customer-features/age.html").read_text()
        assert "stat-mean" in html and "<svg" in html
        page = read(out / "features/customer-features/age.html")
        assert "privacy review PRIV-12: age histogram approved" in text_of(page, "reviewed")
        pyproject.write_text(
            original + '\n[tool.fsgen.catalog.value_statistics]\n"customer-features:agee" = "x"\n'
        )
        code, _, err = _cli(example, "catalog", "--output", str(tmp_path / "bad"))
        assert code == 1 and "Traceback" not in err
        assert err.strip().splitlines() == [
            f"error: {pyproject} [tool.fsgen.catalog] value_statistics: no such feature "
            "'customer-features:agee' (write 'group:feature')"
        ]
        pyproject.write_text(
            original + '\n[tool.fsgen.catalog.value_statistics]\n"customer-features:age" = " "\n'
        )
        code, _, err = _cli(example, "catalog", "--output", str(tmp_path / "bad"))
        assert code == 1 and "needs the review's reason" in err
    finally:
        pyproject.write_text(original)


def test_feature_pages_show_group_tags_and_set_pages_pii_and_history(
    example: Path, tmp_path: Path
) -> None:
    out = _site(example, tmp_path / "site")
    age = read(out / "features/customer-features/age.html")
    assert text_of(age, "group-tags").startswith("cost-center=growth domain=customer")
    assert "tag:domain%3Dcustomer" in " ".join(age.links)
    fs = read(out / "feature-sets/fraud-model.html")
    assert text_of(fs, "pii-banner") == (
        "The model's input includes personal data: age (personal)."
    )
    history = text_of(fs, "history")
    assert "apply (customer-features create, merchant-features create)" in history
    assert history.count("ingest") == 2
    assert "../features/customer-features/age.html" in fs.links


def test_histograms_carry_counts_and_axes(example: Path, tmp_path: Path) -> None:
    out = _site(example, tmp_path / "site")
    html = (out / "features/merchant-features/chargeback_rate.html").read_text()
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert svg.count('class="axis"') == 2 and ">count</text>" in svg and ">value</text>" in svg
    page = read(out / "features/merchant-features/chargeback_rate.html")
    counts = [int(c.replace(",", "")) for c in page.by_class["bin-count"]]
    assert len(counts) == 20 and sum(counts) == int(text_of(page, "stat-rows"))
    assert f">{max(counts):,}</text>" in svg  # the y axis is labelled with the tallest bin
    category = (out / "features/merchant-features/category.html").read_text()
    top = category.split('class="hist top-values"', 1)[1].split("</svg>", 1)[0]
    assert top.count('class="count"') == top.count("<rect") > 1


def test_a_project_overrides_catalog_templates(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project({"featuredefs/defs.py": DEFS})
    packaged = Path(__file__).resolve().parents[2] / "fsgen/templates/catalog/base.html.jinja"
    override = root / "templates/catalog/base.html.jinja"
    override.parent.mkdir(parents=True)
    override.write_text(packaged.read_text().replace("<body>", '<body class="acme">', 1))
    assert '<body class="acme">' in override.read_text()
    code, _, err = _cli(root, "catalog", "--output", str(tmp_path / "site"))
    assert code == 0, err
    for page in ("index.html", "groups/clicks.html", "features/clicks/n_clicks.html"):
        assert '<body class="acme">' in (tmp_path / "site" / page).read_text(), page
