"""Every artifact kind checked against an independent authority: botocore's own parameter
validation for CreateFeatureGroup, sqlglot's Athena dialect for SQL, fsgen's validator limits,
and the manifest/header contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
import pytest
import sqlglot
from botocore.validate import validate_parameters
from codegen_helpers import GOLDEN, REPO, SCENARIOS, load_project
from sqlglot import exp

from fsgen.codegen import MANIFEST, build
from fsgen.codegen.emit import sha256_text
from fsgen.codegen.sql import SqlIdentifierError, ident
from fsgen.validate import FEATURE_NAME, GROUP_NAME, MAX_FEATURE_DESCRIPTION

ROOTS = [REPO, *(GOLDEN / s for s in SCENARIOS)]
IDS = ["example", *SCENARIOS]


@pytest.fixture(scope="module")
def create_shape():  # type: ignore[no-untyped-def]
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateFeatureGroup").input_shape


def _artifacts(root: Path) -> dict[str, str]:
    config, spec = load_project(root)
    return {a.path: a.content for a in build(config, spec)}


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_create_feature_group_requests_pass_botocore_validation(root: Path, create_shape) -> None:  # type: ignore[no-untyped-def]
    files = _artifacts(root)
    requests = [json.loads(t) for p, t in files.items() if p.endswith("/feature_group.json")]
    assert requests
    for request in requests:
        validate_parameters(request, create_shape)  # raises ParamValidationError
        assert GROUP_NAME.match(request["FeatureGroupName"])
        assert len(request.get("Description", "")) <= 128
        names = [d["FeatureName"] for d in request["FeatureDefinitions"]]
        assert len(names) == len(set(names))
        assert all(FEATURE_NAME.match(n) for n in names)
        assert request["RecordIdentifierFeatureName"] in names
        assert request["EventTimeFeatureName"] in names


def test_botocore_rejects_a_broken_request(create_shape) -> None:  # type: ignore[no-untyped-def]
    """The validation above can fail: a request missing FeatureDefinitions is refused."""
    from botocore.exceptions import ParamValidationError

    files = _artifacts(REPO)
    request = json.loads(files["groups/customer_features/feature_group.json"])
    del request["FeatureDefinitions"]
    with pytest.raises(ParamValidationError):
        validate_parameters(request, create_shape)


def test_vector_and_list_features_carry_collection_config() -> None:
    files = _artifacts(GOLDEN / "rides")
    request = json.loads(files["groups/driver_city_stats/feature_group.json"])
    by_name = {d["FeatureName"]: d for d in request["FeatureDefinitions"]}
    assert by_name["route_embedding"]["CollectionConfig"] == {"VectorConfig": {"Dimension": 4}}
    assert by_name["zones_today"]["CollectionType"] == "List"
    assert request["OnlineStoreConfig"]["StorageType"] == "InMemory"
    assert request["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Hours", "Value": 6}
    assert request["RecordIdentifierFeatureName"] == "driver_city_key"


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_cloudformation_mirrors_the_request(root: Path) -> None:
    files = _artifacts(root)
    for path, text in files.items():
        if not path.endswith("/cloudformation.json"):
            continue
        template = json.loads(text)
        request = json.loads(files[path.replace("cloudformation.json", "feature_group.json")])
        (resource,) = template["Resources"].values()
        assert resource["Type"] == "AWS::SageMaker::FeatureGroup"
        props = dict(resource["Properties"])
        if "RoleArn" in request:  # groups with an offline store
            assert props.pop("RoleArn") == {"Ref": "RoleArn"}
        assert props == {k: v for k, v in request.items() if k != "RoleArn"}
        meta = template["Metadata"]["fsgen"]
        assert meta["spec-hash"].startswith("sha256:") and meta["sources"]


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_every_sql_statement_parses_as_athena(root: Path) -> None:
    files = _artifacts(root)
    # maintenance.athena.sql holds Athena DDL (OPTIMIZE, VACUUM), no query: see
    # test_codegen_maintenance.py and tests/pit/test_pit_athena_sql.py
    sqls = {p: t for p, t in files.items() if p.endswith(".sql") and "/maintenance." not in p}
    assert sqls
    _, spec = load_project(root)
    # a feature set of aggregation features only: its point-in-time query returns the label
    # rows, the features come from groups/<g>/aggregate_query.athena.sql
    labels_only = {
        f"feature_sets/{fs.name.replace('-', '_')}/pit_query.athena.sql"
        for fs in spec.feature_sets
        if all(spec.group(i.group).aggregations for i in fs.items if i.group)
    }
    for path, text in sqls.items():
        tree = sqlglot.parse_one(text, read="athena")
        assert isinstance(tree, exp.Select), path
        assert (tree.find(exp.Window) is None) == (path in labels_only), path


def test_snapshot_sql_selects_the_stored_columns_quoted() -> None:
    config, spec = load_project(GOLDEN / "rides")
    files = {a.path: a.content for a in build(config, spec)}
    text = files["groups/driver_city_stats/snapshot.athena.sql"]
    tree = sqlglot.parse_one(text, read="athena")
    selected = [c.name for c in tree.selects]
    assert selected == [n for n, _ in spec.group("driver-city-stats").stored_columns()]
    assert all(c.this.quoted for c in tree.selects)
    assert 'PARTITION BY "driver_city_key"' in text
    assert 'from_unixtime("ts")' in text


def test_an_aggregation_group_gets_its_aggregate_query_and_no_snapshot_query() -> None:
    """Its offline rows are events and its states live online only: a latest-record query
    would select each entity's last event time and nothing else."""
    files = _artifacts(REPO)
    assert "groups/purchases/aggregate_query.athena.sql" in files
    assert "groups/purchases/snapshot.athena.sql" not in files
    assert "groups/customer_features/snapshot.athena.sql" in files


@pytest.mark.parametrize("name", ["a;drop", 'x"y', "", "-lead", "a b", "ü"])
def test_identifiers_are_validated_before_quoting(name: str) -> None:
    with pytest.raises(SqlIdentifierError, match="not a valid Athena identifier"):
        ident(name, "column")


def test_identifier_quoting() -> None:
    assert ident("customer-features") == '"customer-features"'
    assert ident("_x1") == '"_x1"'


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_headers_and_manifest(root: Path) -> None:
    files = _artifacts(root)
    manifest = json.loads(files[MANIFEST])
    assert sorted(manifest["files"]) == sorted(p for p in files if p != MANIFEST)
    for path, entry in manifest["files"].items():
        text = files[path]
        assert entry["sha256"] == sha256_text(text)
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", entry["spec_hash"])
        assert entry["sources"], path
        assert text.endswith("\n") and "\r" not in text
        if path.endswith(".py"):
            assert text.startswith("# @generated by fsgen — DO NOT EDIT.\n# source: "), path
            assert f"# spec-hash: {entry['spec_hash']}\n" in text
            assert "# regenerate: fsgen generate\n" in text
        elif path.endswith(".sql"):
            assert text.startswith("-- @generated by fsgen — DO NOT EDIT.\n-- source: "), path
        elif path.endswith(".md"):
            assert text.startswith("<!--\n@generated by fsgen — DO NOT EDIT.\n"), path
        else:
            json.loads(text)


def test_group_headers_name_the_definition_file() -> None:
    files = _artifacts(REPO)
    text = files["groups/customer_features/runtime.py"]
    assert "# source: featuredefs/customer.py (feature group 'customer-features')\n" in text
    assert "import featuredefs.customer\n" in text
    # the transformation is imported, never copied
    assert "fn=featuredefs.customer.avg_monthly_spend" in text
    assert "total_spend / max(tenure_months, 1)" not in text


def test_catalog_lists_every_feature_with_lineage_and_users(example) -> None:  # type: ignore[no-untyped-def]
    config, spec = example
    files = {a.path: a.content for a in build(config, spec)}
    catalog = json.loads(files["catalog.json"])
    features = {(g["name"], f["name"]): f for g in catalog["groups"] for f in g["features"]}
    # row features, and one page per window of each aggregation
    assert len(features) == sum(len(g.output_names()) for g in spec.groups)
    age = features[("customer-features", "age")]
    assert age["pii"] == "personal" and age["dtype"] == "Integral"
    assert age["raw_inputs"] == ["birth_date", "last_updated_time"]
    assert age["feature_sets"] == ["fraud-model"]
    assert (
        age["transformation"]["logic_hash"]
        == spec.group("customer-features").feature("age").logic_hash
    )
    risk = features[("merchant-features", "is_high_risk")]
    assert risk["raw_inputs"] == ["chargebacks", "transactions"]  # through chargeback_rate
    (od,) = catalog["on_demand"]
    assert od["stored_inputs"] == ["customer-features:avg_monthly_spend"]
    markdown = files["catalog.md"]
    for g in spec.groups:
        assert f"## Feature group `{g.name}`" in markdown
        for f in g.features:
            assert f"| `{f.name}` | {f.dtype} | {f.pii} |" in markdown
            assert len(f.description) <= MAX_FEATURE_DESCRIPTION
    assert "## Feature set `fraud-model`" in markdown


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_generated_python_imports_every_transformation_and_copies_none(root: Path) -> None:
    config, spec = load_project(root)
    files = {a.path: a.content for a in build(config, spec)}
    python = "\n".join(t for p, t in files.items() if p.endswith(".py"))
    functions = [f.function for g in spec.groups for f in g.features]
    functions += [od.function for od in spec.on_demand]
    sources = [f.source for g in spec.groups for f in g.features]
    sources += [od.source for od in spec.on_demand]
    for ref in functions:
        assert f"fn={ref.module}.{ref.name}," in python
    for source in sources:
        body = [
            line.strip()
            for line in source.splitlines()
            if line.strip()
            and not line.lstrip().startswith(("@", "def ", ")", "pii=", "description=", "tags="))
        ]
        for line in body:
            assert line not in python, f"transformation code copied into generated code: {line}"
