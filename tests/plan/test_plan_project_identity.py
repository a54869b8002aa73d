"""Two ``fsgen init`` projects sharing one store directory each plan only their own groups.

Before projects had an identity of their own, every scaffolded project tagged its groups
``fsgen:project=featuredefs`` (its definitions package), so the second project planned
``1 to add, 0 to change, 0 to replace, 1 to destroy.`` and apply deleted the first's group.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.config import load_config

ENV = {"COLUMNS": "80", "NO_COLOR": "1", "FSGEN_USER": "tester"}


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def init(root: Path, name: str | None, store: Path, group: str = "user-activity") -> Path:
    code, _, err = cli("init", str(root), *(("--name", name) if name else ()))
    assert code == 0, err
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('store_dir = ".fsgen"', f'store_dir = "{store}"')
    )
    example = root / "featuredefs" / "example.py"
    example.write_text(example.read_text().replace('"user-activity"', f'"{group}"'))
    return root


def summary(text: str) -> str:
    found = re.findall(r"^(Plan: .*|No changes\..*)$", text, re.M)
    assert found, text
    return found[-1]


def test_init_gives_each_project_its_own_identity(tmp_path: Path) -> None:
    store = tmp_path / "shared-store"
    alpha = init(tmp_path / "alpha", "Alpha_Recs", store)
    beta = init(tmp_path / "beta dir", None, store)
    assert load_config(alpha).project == "alpha-recs"  # --name, normalized
    assert load_config(beta).project == "beta-dir"  # the directory's name
    assert 'project = "alpha-recs"' in (alpha / "pyproject.toml").read_text()
    code, _, err = cli("--project", str(alpha), "catalog", "--output", str(tmp_path / "cat"))
    assert code == 0, err
    assert "<h1>alpha-recs</h1>" in (tmp_path / "cat" / "index.html").read_text()


def test_two_projects_on_one_store_plan_only_their_own_groups(tmp_path: Path) -> None:
    store = tmp_path / "shared-store"
    alpha = init(tmp_path / "alpha", "alpha", store)
    beta = init(tmp_path / "beta", "beta", store, group="user-sessions")
    assert cli("--project", str(alpha), "apply", "--auto-approve")[0] == 0

    code, out, err = cli("--project", str(beta), "plan", "--detailed-exitcode")
    assert code == 2, err
    assert summary(out) == "Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy."
    assert "user-activity" not in out  # another project's group is not even shown
    code, out, _ = cli("--project", str(beta), "plan", "--json")
    assert [c["group"] for c in json.loads(out)["changes"]] == ["user-sessions"]
    assert cli("--project", str(beta), "apply", "--auto-approve")[0] == 0

    code, out, _ = cli("--project", str(alpha), "plan", "--detailed-exitcode")
    assert code == 0 and summary(out).startswith("No changes.")
    code, out, err = cli("--project", str(beta), "destroy", "--auto-approve")
    assert code == 0, err
    code, out, _ = cli("--project", str(alpha), "plan", "--detailed-exitcode")
    assert code == 0 and summary(out).startswith("No changes.")  # alpha's group survived
    code, out, _ = cli("--project", str(beta), "plan", "--detailed-exitcode")
    assert code == 2 and summary(out).startswith("Plan: 1 to add")


def test_a_group_of_another_project_is_an_error_not_a_takeover(tmp_path: Path) -> None:
    store = tmp_path / "shared-store"
    alpha = init(tmp_path / "alpha", "alpha", store)
    gamma = init(tmp_path / "gamma", "gamma", store)  # declares user-activity too
    assert cli("--project", str(alpha), "apply", "--auto-approve")[0] == 0
    for command in (("plan",), ("apply", "--auto-approve")):
        code, _, err = cli("--project", str(gamma), *command)
        assert code == 1
        assert "FS301: feature group 'user-activity' already exists" in err
        assert "belongs to fsgen project 'alpha'" in err and "not to this project 'gamma'" in err
    code, out, err = cli("--project", str(gamma), "destroy", "--auto-approve")
    assert code == 0 and "No changes." in out + err  # gamma owns nothing to destroy
    code, out, _ = cli("--project", str(alpha), "plan", "--detailed-exitcode")
    assert code == 0 and summary(out).startswith("No changes.")


def test_a_group_deployed_under_the_old_identity_says_how_to_keep_it(tmp_path: Path) -> None:
    """Groups deployed before projects had an identity carry the definitions package's name."""
    store = tmp_path / "shared-store"
    legacy = init(tmp_path / "legacy", "shop", store)
    pyproject = legacy / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('project = "shop"', 'project = "featuredefs"'))
    assert cli("--project", str(legacy), "apply", "--auto-approve")[0] == 0  # the old tag
    pyproject.write_text(text)  # now identified as "shop" ([project].name)
    code, _, err = cli("--project", str(legacy), "plan")
    assert code == 1
    assert "belongs to fsgen project 'featuredefs'" in err
    assert 'keep that identity with project = "featuredefs" under [tool.fsgen]' in err
    pyproject.write_text(text.replace('project = "shop"', 'project = "featuredefs"'))
    code, out, _ = cli("--project", str(legacy), "plan", "--detailed-exitcode")
    assert code == 0 and summary(out).startswith("No changes.")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('project = "Has Spaces"', "identity 'Has Spaces' must be 1-63 lowercase letters"),
        ('project = "-lead"', "identity '-lead' must be 1-63 lowercase letters"),
        ('project = "' + "x" * 64 + '"', f"identity '{'x' * 64}' must be 1-63 lowercase"),
    ],
)
def test_an_invalid_identity_is_a_config_error(tmp_path: Path, line: str, message: str) -> None:
    root = init(tmp_path / "p", "p", tmp_path / "store")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('project = "p"', line))
    code, _, err = cli("--project", str(root), "validate")
    assert code == 1
    assert "[tool.fsgen]: project: " + message in err


def test_identity_defaults_to_the_normalized_project_name(tmp_path: Path) -> None:
    root = init(tmp_path / "p", "p", tmp_path / "store")
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text().replace('project = "p"\n', "")
    pyproject.write_text(text.replace('name = "p"', 'name = "Music_Recs.Core"'))
    assert load_config(root).project == "music-recs-core"
    pyproject.write_text(text.replace('[project]\nname = "p"\n', "[project]\n"))
    assert load_config(root).project == "featuredefs"  # no name at all: the package, as before


def test_init_refuses_a_name_that_makes_no_identity(tmp_path: Path) -> None:
    code, _, err = cli("init", str(tmp_path / "x"), "--name", "***")
    assert code == 1 and "cannot make a project identity of --name" in err
    assert not (tmp_path / "x" / "pyproject.toml").exists()
