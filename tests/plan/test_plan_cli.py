"""``fsgen plan / apply / destroy / history`` through click's CliRunner: text pinned, JSON
equal to the library's Plan, exit codes, saved plans, confirmation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from planproj import Defs, Project

from fsgen.cli import main
from fsgen.codegen import generate
from fsgen.plan.model import Plan

MakeProject = Callable[[Defs], Project]
ENV = {"COLUMNS": "80", "NO_COLOR": "1", "FSGEN_USER": "tester"}

CREATE = """\
fsgen will perform the following actions:

  # feature group 'users' will be created
  + feature_group "users" {
      + record_identifier  = "user_id"
      + event_time_feature = "ts"
      + online_store       = Standard, ttl 30d
      + offline_store      = Glue at s3://fsgen-local/scratch
      + feature "user_id" String
      + feature "ts" String
      + feature "age" Integral
      + feature "score" Fractional
    }

Apply runs 3 stages: 1 CreateFeatureGroup, 2 UpdateFeatureMetadata (descriptions, parameters).

PII review: personal data is added or reclassified:
  ! users.age: new feature -> personal, served online

Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy.
"""

UPDATE = """\
fsgen will perform the following actions:

  # feature group 'users' will be updated in-place
  ~ feature_group "users" {
      ~ online_ttl_seconds = "30d" -> "7d"
      ~ features.age.description = "Age in years" -> "Age, whole years"
      + features.extra_0 = "Integral"
      ~ description = "Users of the shop" -> "Shop users" # set only at creation: not applied
      ~ tags.fsgen:*-hash (3 definition hashes updated)
        # (3 unchanged features hidden)
    }
"""

LOSS = (
    "its online store records are deleted; offline data is kept but no longer read "
    "(archived): training sets get no values from it until it is ingested again"
)
REPLACE = """\
fsgen will perform the following actions:

  # feature group 'users' must be replaced
  # data loss: LOSS
-/+ feature_group "users" {
      - features.score = "Fractional" # forces replacement
      ~ tags.fsgen:*-hash (3 definition hashes updated)
        # (3 unchanged features hidden)
    }
""".replace("LOSS", LOSS)


def run(proj: Project, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--project", str(proj.root), *args], env=ENV, input=stdin)


@pytest.fixture
def fresh(project: MakeProject) -> Project:
    proj = project(Defs())
    generate(proj.config, proj.spec)
    return proj


def test_create_plan_text_and_exit_codes(fresh: Project) -> None:
    result = run(fresh, "plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert result.stdout == CREATE
    assert run(fresh, "plan").exit_code == 0


def test_json_is_the_plan(fresh: Project) -> None:
    result = run(fresh, "plan", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["format_version"] == 1
    assert Plan.model_validate(data) == fresh.plan()
    assert [s["kind"] for s in data["stages"]] == [
        "create_group",
        "update_feature_metadata",
        "update_feature_metadata",
    ]


def test_apply_then_empty_plan_and_history(fresh: Project) -> None:
    result = run(fresh, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "Apply complete! 1 added, 0 changed, 0 replaced, 0 destroyed." in result.stdout
    again = run(fresh, "plan", "--detailed-exitcode")
    assert again.exit_code == 0
    assert again.stdout == "No changes. Feature store matches the definitions.\n"
    history = run(fresh, "history")
    assert "tester@" in history.stdout and "applied  3/3 stages" in history.stdout


def test_update_and_artifacts(fresh: Project) -> None:
    assert run(fresh, "apply", "--auto-approve").exit_code == 0
    fresh.write(
        Defs(
            ttl="7d", age_description="Age, whole years", extra_features=1, description="Shop users"
        )
    )
    result = run(fresh, "plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert result.stdout.startswith(UPDATE)
    assert "\nGenerated artifacts that change:\n  ~ generated/" in result.stdout
    assert result.stdout.endswith("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.\n")
    applied = run(fresh, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    # apply regenerated generated/; only the not-applied description note remains
    after = run(fresh, "plan", "--json")
    plan = Plan.model_validate_json(after.stdout)
    assert plan.artifacts == () and plan.stages == ()


def test_apply_says_which_artifacts_it_created_and_which_it_regenerated(
    project: MakeProject,
) -> None:
    """As the plan marked them (+ created, ~ changed): a first apply into an empty generated/
    creates every file, a later one regenerates the changed ones."""
    proj = project(Defs())
    first = run(proj, "apply", "--auto-approve")
    assert first.exit_code == 0, first.output
    assert "  created generated/groups/users/runtime.py\n" in first.stderr, first.stderr
    assert "regenerated" not in first.stderr
    proj.write(Defs(age_description="Age, whole years"))
    second = run(proj, "apply", "--auto-approve")
    assert second.exit_code == 0, second.output
    assert "  regenerated generated/catalog.json\n" in second.stderr, second.stderr
    assert "  created " not in second.stderr


def test_replace_needs_the_flag(fresh: Project) -> None:
    assert run(fresh, "apply", "--auto-approve").exit_code == 0
    fresh.write(Defs(with_score=False))
    generate(fresh.config, fresh.spec)
    plan = run(fresh, "plan")
    assert plan.stdout.startswith(REPLACE)
    refused = run(fresh, "apply", "--auto-approve")
    assert refused.exit_code == 1
    assert "rerun with --allow-replace" in refused.stderr
    done = run(fresh, "apply", "--auto-approve", "--allow-replace")
    assert done.exit_code == 0, done.output
    assert "1 replaced" in done.stdout


def test_saved_plan_applies_once_then_is_stale(fresh: Project, tmp_path: Path) -> None:
    planfile = tmp_path / "plan.json"
    saved = run(fresh, "plan", "--out", str(planfile))
    assert saved.exit_code == 0 and planfile.exists()
    assert f"Saved the plan to {planfile}" in saved.stdout
    first = run(fresh, "apply", str(planfile), "--auto-approve")
    assert first.exit_code == 0, first.output
    second = run(fresh, "apply", str(planfile), "--auto-approve")
    assert second.exit_code == 1
    assert "deployed state changed since the plan was made" in second.stderr
    # the outdated plan is refused before it is shown as what will be performed
    assert second.stdout == "", second.stdout


def test_no_confirmation_without_a_terminal(fresh: Project) -> None:
    result = run(fresh, "apply", stdin="")
    assert result.exit_code == 1
    assert "pass --auto-approve" in result.stderr
    assert "apply cancelled; nothing was changed" in result.stderr
    assert run(fresh, "plan", "--detailed-exitcode").exit_code == 2
    yes = run(fresh, "apply", stdin="yes\n")
    assert yes.exit_code == 0, yes.output


def test_destroy(fresh: Project) -> None:
    assert run(fresh, "apply", "--auto-approve").exit_code == 0
    result = run(fresh, "destroy", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert '-   feature_group "users" {' not in result.stdout
    assert '  - feature_group "users" {' in result.stdout
    assert "Apply complete!" not in result.stdout  # Terraform's words for a destroy
    archive = fresh.config.store_path / "archive"
    assert (
        "Destroy complete! Resources: 1 destroyed.\n"
        '  - feature_group "users": deleted, with its online store records\n'
        f"Offline history kept: moved to {archive}/<group>/<UTC time>/\n"
    ) in result.stdout, result.stdout
    assert run(fresh, "plan").stdout == CREATE
    # again, with nothing deployed: said so, not that the store matches the definitions
    again = run(fresh, "destroy", "--auto-approve")
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        "No changes. No feature group of this project is deployed on the local backend: "
        "nothing to destroy.\n"
    )


def test_bad_plan_file(fresh: Project, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": 99}')
    result = run(fresh, "apply", str(bad))
    assert result.exit_code == 1
    assert "plan format_version 99 is not 1" in result.stderr
