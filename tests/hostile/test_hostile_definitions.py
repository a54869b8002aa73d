"""Hostile definitions: names, descriptions and paths chosen to break generated artifacts or
widen IAM grants. Every generated file still compiles or parses, catalog.md carries no raw
HTML, wildcard stream names fail validation at their file:line, and one group's IAM patterns
never cover another group's table or S3 folder."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import textwrap
from pathlib import Path

import pytest

from fsgen.codegen.emit import CodegenError, build, check_parses
from fsgen.config import load_config
from fsgen.errors import ValidationFailed
from fsgen.loader import load
from fsgen.validate import validate

HOSTILE_PATH = 'data/a"""b\\c' + "'" + "d $(rm -rf x) `x`.csv"
DEFS = f'''
"""Hostile definitions."""

from fsgen import Entity, FeatureGroup, Integral, Source, String

user = Entity("user_id", String, description="A user <script>alert(1)</script>")

customer_features = FeatureGroup(
    "customer_features", entity=user, event_time="ts", owner="o",
    description='Desc """ <img src=x onerror=alert(1)> | pipe \\\\ back',
    sources=[Source.batch({HOSTILE_PATH!r}), Source.kinesis("ok-stream")],
)


@customer_features.feature(Integral, description='n """ <script>x</script> \\\\')
def n(count: int) -> int:
    """Docstring with \\"\\"\\" quotes."""
    return count


customer_features_pii = FeatureGroup(
    "customer_features_pii", entity=user, event_time="ts", owner="o", description="pii",
)


@customer_features_pii.feature(Integral, description="m")
def m(count: int) -> int:
    return count
'''
WILDCARD = '''
"""Wildcard stream."""

from fsgen import Entity, FeatureGroup, Integral, Source, String

user = Entity("user_id", String, description="A user")

g = FeatureGroup(
    "g", entity=user, event_time="ts", owner="o", description="d",
    sources=[
        Source.kinesis("*"),
        Source.kinesis("orders", region="us-east-1*"),
        Source.batch("data/x\\n.csv"),
    ],
)


@g.feature(Integral, description="n")
def n(count: int) -> int:
    return count
'''
PYPROJECT = """[project]
name = "hostile"
version = "0"

[tool.fsgen]
definitions = "{package}"

[tool.fsgen.aws]
region = "us-east-1"
role_arn = "arn:aws:iam::123456789012:role/r"
offline_s3_uri = "s3://shared-bucket/features"
"""


def _project(root: Path, package: str, defs: str) -> Path:
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text('"""Hostile."""\n')
    (root / package / "groups.py").write_text(textwrap.dedent(defs))
    (root / "pyproject.toml").write_text(PYPROJECT.format(package=package))
    return root


def test_every_generated_file_parses_from_hostile_definitions(tmp_path: Path) -> None:
    root = _project(tmp_path, "hostiledefs", DEFS)
    config = load_config(root)
    spec = load(root)
    assert [d for d in validate(spec) if d.code == "FS209"] == []  # quotes are not invalid
    artifacts = build(config, spec)
    py = [a for a in artifacts if a.path.endswith(".py")]
    assert py and all(ast.parse(a.content) for a in py)
    for a in artifacts:
        if a.path.endswith(".json"):
            json.loads(a.content)
    job = next(a for a in py if a.path.endswith("customer_features/batch_job.py"))
    tree = ast.parse(job.content)
    assert 'a"""b' in (ast.get_docstring(tree) or "")  # the path, shown as it is
    catalog = next(a for a in artifacts if a.path == "catalog.md").content
    catalog = re.sub(r"(?ms)^(`{3,})text$.*?^\1$", "", catalog)  # code blocks show code
    for raw in ("<script>", "<img", "</script>"):
        assert raw not in catalog
    assert "&lt;img src=x onerror=alert(1)&gt;" in catalog


def test_a_generated_file_that_does_not_parse_fails_generation() -> None:
    with pytest.raises(CodegenError, match=r"x\.py does not parse"):
        check_parses("groups/x.py", '"""a """ b"""\n')
    with pytest.raises(CodegenError, match=r"x\.json does not parse"):
        check_parses("x.json", "{")


def test_wildcard_and_invalid_source_names_fail_validation(tmp_path: Path) -> None:
    root = _project(tmp_path, "wildcarddefs", WILDCARD)
    with pytest.raises(ValidationFailed) as failed:
        load(root)
    found = [d for d in failed.value.diagnostics if d.code == "FS209"]
    assert len(found) == 3
    assert {d.path for d in found} == {"wildcarddefs/groups.py"}
    assert all(d.line > 0 for d in found)
    messages = " ".join(d.message for d in found)
    assert "'*'" in messages and "'us-east-1*'" in messages and "control characters" in messages


def test_iam_patterns_of_one_group_never_cover_another(tmp_path: Path) -> None:
    root = _project(tmp_path, "iamdefs", DEFS)
    artifacts = {a.path: a for a in build(load_config(root), load(root))}
    policy = json.loads(artifacts["iam/dataset_building.json"].content)
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    prefixes = [
        p
        for s in policy["Statement"]
        for p in s.get("Condition", {}).get("StringLike", {}).get("s3:prefix", [])
    ]
    db = "table/sagemaker_featurestore"
    mine = [r for r in resources if f"{db}/customer_features" in r and "pii" not in r]
    other_table = f"arn:aws:glue:us-east-1:123456789012:{db}/customer_features_pii_1700000000"
    own_table = f"arn:aws:glue:us-east-1:123456789012:{db}/customer_features_1700000000"
    assert any(fnmatch.fnmatchcase(own_table, r) for r in mine)
    assert not any(fnmatch.fnmatchcase(other_table, r) for r in mine)
    folder = "features/123456789012/sagemaker/us-east-1/offline-store"
    mine_s3 = [p for p in prefixes if "customer_features-" in p]
    own = f"{folder}/customer_features-1700000000/data/year=2026/x.parquet"
    other = f"{folder}/customer_features_pii-1700000000/data/year=2026/x.parquet"
    assert any(fnmatch.fnmatchcase(own, p) for p in mine_s3)
    assert not any(fnmatch.fnmatchcase(other, p) for p in mine_s3)
    assert "features/*" not in prefixes
    assert not any(r.endswith("shared-bucket/features/*") for r in resources)
