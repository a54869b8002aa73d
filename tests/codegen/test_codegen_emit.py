"""Writing generated/: --check names stale files, removed artifacts are deleted using the old
manifest, writes leave no temp files, plan's changed_artifacts, and the registration point."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from codegen_helpers import GOLDEN, load_project

from fsgen.cli import main
from fsgen.codegen import (
    MANIFEST,
    Artifact,
    BuildContext,
    CodegenError,
    build,
    changed_artifacts,
    generate,
    stale_files,
)
from fsgen.codegen.artifacts import BUILDERS, load_builders
from fsgen.codegen.views import Header


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(GOLDEN / "shop", root, ignore=shutil.ignore_patterns("__pycache__"))
    generate(*load_project(root))  # fresh with every registered builder (goldens pin content)
    return root


def _cli(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--project", str(root), "generate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_check_passes_when_fresh_and_names_a_hand_edited_file(shop: Path) -> None:
    code, out, _ = _cli(shop, "--check")
    assert code == 0 and "generated/ is up to date" in out
    target = shop / "generated/groups/product_stats/batch_job.py"
    target.write_text(target.read_text() + "# local edit\n")
    code, _, err = _cli(shop, "--check")
    assert code == 1
    assert "stale: generated/groups/product_stats/batch_job.py (out of date)" in err
    assert "run 'fsgen generate'" in err
    assert target.read_text().endswith("# local edit\n")  # --check writes nothing


def test_check_detects_a_definition_change_and_generate_fixes_it(shop: Path) -> None:
    defs = shop / "shopdefs/products.py"
    defs.write_text(
        defs.read_text().replace(
            '"Number of published reviews"', '"Reviews published on the product page"'
        )
    )
    config, spec = load_project(shop)
    stale = stale_files(config, spec)
    assert "generated/catalog.md: out of date" in stale
    # the request carries the fsgen:metadata-hash tag apply sends, so it changes with the text
    assert "generated/groups/product_stats/feature_group.json: out of date" in stale
    assert "generated/groups/product_stats/batch_job.py: out of date" in stale  # header hash
    assert "catalog.json" in changed_artifacts(config, spec)
    code, _, err = _cli(shop)
    assert code == 0 and "updated generated/catalog.md" in err
    assert _cli(shop, "--check")[0] == 0
    assert changed_artifacts(*load_project(shop)) == []


def test_removed_group_files_are_deleted_using_the_old_manifest(shop: Path) -> None:
    defs = shop / "shopdefs/products.py"
    text = defs.read_text().replace('"product-stats"', '"item-stats"')
    defs.write_text(text)
    keep = shop / "generated/NOTES.txt"
    keep.write_text("not generated; must survive\n")
    config, spec = load_project(shop)
    assert "generated/groups/product_stats/batch_job.py: no longer generated" in stale_files(
        config, spec
    )
    result = generate(config, spec)
    assert "groups/product_stats/batch_job.py" in result.removed
    assert not (shop / "generated/groups/product_stats").exists()
    assert (shop / "generated/groups/item_stats/batch_job.py").is_file()
    assert keep.exists()
    manifest = json.loads((shop / "generated" / MANIFEST).read_text())
    assert not any(p.startswith("groups/product_stats/") for p in manifest["files"])


def test_generate_writes_only_changed_files_and_no_temp_files(shop: Path) -> None:
    config, spec = load_project(shop)
    shutil.rmtree(shop / "generated")
    first = generate(config, spec)
    assert len(first.created) == len(first.artifacts)
    stamp = {p: p.stat().st_mtime_ns for p in (shop / "generated").rglob("*") if p.is_file()}
    second = generate(config, spec)
    assert second.changed == [] and len(second.unchanged) == len(second.artifacts)
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    assert not [p for p in (shop / "generated").rglob(".*")]


def test_json_output(shop: Path) -> None:
    code, out, _ = _cli(shop, "--check", "--json")
    data = json.loads(out)
    assert code == 0 and data["fresh"] is True and data["created"] == []


def extra_builder(ctx: BuildContext) -> Iterator[Artifact]:
    for g in ctx.spec.groups:
        yield ctx.artifact(
            f"groups/{g.name}/notes.sql",
            kind="notes",
            body="SELECT 1\n",
            header=Header(sources=(str(g.location),), spec_hash="sha256:" + "0" * 64),
        )


def test_registration_point_adds_artifact_kinds(shop: Path) -> None:
    config, spec = load_project(shop)
    builders = [*load_builders(), extra_builder]
    artifacts = {a.path: a for a in build(config, spec, builders)}
    extra = artifacts["groups/product-stats/notes.sql"]
    assert extra.content.startswith("-- @generated by fsgen — DO NOT EDIT.\n")
    assert "groups/product-stats/notes.sql" in json.loads(artifacts[MANIFEST].content)["files"]
    with pytest.raises(CodegenError, match="two artifact builders produce"):
        build(config, spec, [*builders, extra_builder])
    assert "fsgen.codegen.artifacts:group_artifacts" in BUILDERS


def test_artifact_paths_must_stay_inside_generated(shop: Path) -> None:
    config, spec = load_project(shop)

    def escape(ctx: BuildContext) -> Iterator[Artifact]:
        yield ctx.artifact("../outside.py", kind="x", body="", header=Header((), ""))

    with pytest.raises(CodegenError, match="relative and normalized"):
        build(config, spec, [escape])


def test_invalid_definitions_generate_nothing(shop: Path) -> None:
    defs = shop / "shopdefs/products.py"
    defs.write_text(
        defs.read_text().replace(
            "def rating(star_total: int, review_count: int)",
            "def rating(star_total, review_count: int)",
        )
    )
    before = {p: p.read_bytes() for p in (shop / "generated").rglob("*") if p.is_file()}
    code, _, err = _cli(shop)
    assert code == 1
    assert "shopdefs/products.py:" in err and "FS104" in err
    assert {p: p.read_bytes() for p in (shop / "generated").rglob("*") if p.is_file()} == before


def test_a_failing_builder_leaves_generated_untouched(shop: Path) -> None:
    config, spec = load_project(shop)
    before = {p: p.read_bytes() for p in (shop / "generated").rglob("*") if p.is_file()}

    def broken(ctx: BuildContext) -> Iterator[Artifact]:
        yield ctx.artifact("late.sql", kind="x", body="SELECT 1\n", header=Header((), ""))
        raise RuntimeError("builder failed")

    defs = shop / "shopdefs/products.py"
    defs.write_text(defs.read_text().replace('"Orders search results"', '"Ranks search"'))
    config, spec = load_project(shop)
    with pytest.raises(RuntimeError, match="builder failed"):
        generate(config, spec, [*load_builders(), broken])
    after = {p: p.read_bytes() for p in (shop / "generated").rglob("*") if p.is_file()}
    assert after == before  # everything is built in memory before the first write


def test_plan_marks_generated_files_created_changed_and_removed(shop: Path) -> None:
    """Renaming a group: plan lists the new group's files as '+', the old group's as '-' (no
    longer generated: removed), the catalog as '~'; apply then does exactly that."""
    defs = shop / "shopdefs/products.py"
    defs.write_text(defs.read_text().replace('"product-stats"', '"item-stats"'))
    result = CliRunner().invoke(main, ["--project", str(shop), "plan"])
    lines = result.stdout.splitlines()
    assert "  + generated/groups/item_stats/batch_job.py" in lines
    assert (
        "  - generated/groups/product_stats/batch_job.py  (no longer generated: removed)" in lines
    )
    assert "  ~ generated/catalog.md" in lines
    assert not any(" ~ generated/groups/product_stats/" in line for line in lines)
