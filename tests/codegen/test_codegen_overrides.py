"""A project's own ``templates/`` overrides packaged templates file for file (the golden
scenario ``tests/golden/overrides`` pins the output): the override renders, the header and
MANIFEST name it with its hash, any edit to it makes ``generate --check`` stale, and a broken
override is an error at its file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from codegen_helpers import GOLDEN, load_project

from fsgen.cli import main
from fsgen.codegen import build

SCENARIO = GOLDEN / "overrides"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "overrides"
    shutil.copytree(SCENARIO, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _check(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--project", str(root), "generate", "--check"])
    return result.exit_code, result.stdout + result.stderr


def test_overrides_render_and_are_named_with_their_hashes(project: Path) -> None:
    config, spec = load_project(project)
    files = {a.path: a for a in build(config, spec)}
    sql = files["groups/shop_orders/snapshot.athena.sql"]
    assert "-- source: templates/snapshot.athena.sql.jinja (template override)\n" in sql.content
    assert '"sagemaker_featurestore"."<shop-orders offline store table>_v"' in sql.content
    manifest = json.loads(files["MANIFEST.json"].content)["files"]
    assert set(manifest["catalog.md"]["templates"]) == {"_macros/markdown.jinja"}
    assert set(manifest["groups/shop_orders/snapshot.athena.sql"]["templates"]) == {
        "snapshot.athena.sql.jinja"
    }
    # artifacts no override touched carry no templates entry
    assert "templates" not in manifest["groups/shop_orders/batch_job.py"]


def test_without_templates_dir_the_packaged_output_comes_back(project: Path) -> None:
    shutil.rmtree(project / "templates")
    config, spec = load_project(project)
    files = {a.path: a.content for a in build(config, spec)}
    assert "template override" not in "".join(files.values())
    assert (
        '"sagemaker_featurestore"."<shop-orders offline store table>"\n'
        in files["groups/shop_orders/snapshot.athena.sql"]
    )
    unchanged = json.loads((SCENARIO / "generated/MANIFEST.json").read_text())["files"]
    assert (
        files["groups/shop_orders/batch_job.py"]
        == (SCENARIO / "generated/groups/shop_orders/batch_job.py").read_text()
    )
    assert "templates" not in unchanged["groups/shop_orders/batch_job.py"]


def test_any_edit_to_an_override_makes_generated_stale(project: Path) -> None:
    assert _check(project) == (0, "generated/ is up to date (18 artifacts)\n")
    macro = project / "templates/_macros/markdown.jinja"
    # a template comment changes no output byte of the body, but the template is an input
    macro.write_text(macro.read_text() + "{# reviewed by the docs team #}\n")
    code, out = _check(project)
    assert code == 1
    assert "stale: generated/catalog.md (out of date)" in out
    assert "stale: generated/MANIFEST.json (out of date)" in out
    assert "snapshot.athena.sql" not in out  # it does not use that macro


def test_a_broken_override_is_an_error_at_its_line(project: Path) -> None:
    template = project / "templates/snapshot.athena.sql.jinja"
    template.write_text(template.read_text().replace("{{ s.identifier }}", "{{ s.identifer }}"))
    code, out = _check(project)
    assert code == 1 and "Traceback" not in out
    assert out.strip().splitlines() == [
        "error: templates/snapshot.athena.sql.jinja:11: template error: UndefinedError: "
        "'fsgen.codegen.views.SnapshotView object' has no attribute 'identifer'"
    ]
    template.write_text("{% if %}\n")
    code, out = _check(project)
    assert code == 1
    assert out.startswith("error: templates/snapshot.athena.sql.jinja:1: template error: ")
