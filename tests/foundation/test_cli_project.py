"""fsgen validate / init / --help through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main

REPO = Path(__file__).resolve().parents[2]
ENV = {"COLUMNS": "80", "NO_COLOR": "1"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env=ENV).invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_example_prints_summary() -> None:
    code, out, _ = run("--project", str(REPO), "validate")
    assert code == 0
    assert out == "3 feature groups, 13 features (5 from 2 aggregations), 2 feature sets: valid\n"


def test_validate_json() -> None:
    code, out, _ = run("--project", str(REPO), "validate", "--json")
    assert code == 0
    assert json.loads(out) == {
        "valid": True,
        "diagnostics": [],
        "summary": "3 feature groups, 13 features (5 from 2 aggregations), 2 feature sets",
        "warnings": [],
    }


def test_a_project_without_feature_groups_is_valid_with_a_warning(
    make_project: Callable[..., Path],
) -> None:
    """Nothing declared (the example module deleted, or definitions in another package than
    the configured one): valid, but said, since nothing can be applied, ingested or served."""
    root = make_project({"featuredefs/notes.py": "NOTE = 'nothing here yet'\n"})
    code, out, err = run("--project", str(root), "validate")
    assert code == 0
    assert out == "0 feature groups, 0 features, 0 feature sets: valid\n"
    assert err.startswith("warning: featuredefs/ declares no feature group: there is nothing"), err
    code, out, _ = run("--project", str(root), "validate", "--json")
    assert code == 0 and json.loads(out)["warnings"][0].startswith("featuredefs/ declares no")


def test_validate_reports_every_error_and_exits_1(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "featuredefs/bad.py": """
        from fsgen import Entity, FeatureGroup, Fractional, String

        customer = Entity("customer_id", String)
        g = FeatureGroup("grp", entity=customer, event_time="ts", owner="o", description="d")

        @g.feature(Fractional, description="Average spend per month of tenure")
        def avg_monthly_spend(total_spend: float, tenure) -> float:
            return total_spend / tenure

        @g.feature(Fractional)
        def other(total_spend: float) -> float:
            return total_spend
        """
        }
    )
    code, out, err = run("--project", str(root), "validate")
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "featuredefs/bad.py:6: error FS104: feature 'avg_monthly_spend' depends on 'tenure', "
        "which is not defined",
        "  hint: add a parameter annotation for raw field 'tenure' or define a feature named "
        "'tenure'",
        "featuredefs/bad.py:10: error FS108: feature 'other' has no description",
        "  hint: one line of business meaning, e.g. 'Average spend per month'",
        "1 feature group, 2 features, 0 feature sets: 2 error(s)",
    ]
    code, out, _ = run("--project", str(root), "validate", "--json")
    payload = json.loads(out)
    assert code == 1 and payload["valid"] is False
    assert [(d["path"], d["line"], d["code"]) for d in payload["diagnostics"]] == [
        ("featuredefs/bad.py", 6, "FS104"),
        ("featuredefs/bad.py", 10, "FS108"),
    ]


def test_missing_project_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run("--project", str(tmp_path), "validate")
    assert code == 1
    assert err.startswith("error: no pyproject.toml with a [tool.fsgen] table")


def test_init_scaffolds_a_valid_project(tmp_path: Path) -> None:
    target = tmp_path / "new-project"
    code, out, _ = run("init", str(target))
    assert code == 0 and "Initialized fsgen project" in out
    code, out, _ = run("--project", str(target), "validate")
    assert (code, out) == (0, "1 feature group, 2 features, 1 feature set: valid\n")
    code, _, err = run("init", str(target))
    assert code == 1 and "already exists" in err


def test_init_says_where_and_what_to_run_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project made in the current directory is named after it (normalized), and the next
    step is not a ``cd .``; one made elsewhere says where, quoted for the shell."""
    here = tmp_path / "plant telemetry"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, _ = run("init", ".")
    assert code == 0
    assert out == f"Initialized fsgen project 'plant-telemetry' in {here}. Next: fsgen validate\n"
    code, out, _ = run("init", "sub dir")
    assert code == 0
    assert out.endswith("Next: cd 'sub dir' && fsgen validate\n")


def test_init_never_overwrites_a_file_it_would_write(tmp_path: Path) -> None:
    """A directory holding the user's own featuredefs/example.py (or data file) but no
    pyproject.toml is refused, naming the files, and nothing is written."""
    target = tmp_path / "existing"
    (target / "featuredefs").mkdir(parents=True)
    mine = target / "featuredefs" / "example.py"
    mine.write_text("# my own definitions\n")
    code, _, err = run("init", str(target))
    assert code == 1
    assert err.startswith(f"error: {target}: would overwrite featuredefs/example.py; ")
    assert mine.read_text() == "# my own definitions\n"
    assert sorted(p.name for p in target.rglob("*")) == ["example.py", "featuredefs"]


def test_init_names_the_given_name_it_cannot_use(tmp_path: Path) -> None:
    code, _, err = run("init", str(tmp_path / "x"), "--name", "___")
    assert code == 1
    assert err.startswith("error: cannot make a project identity of --name '___' (normalized: '')")


def test_demo_on_another_project_is_refused_before_any_step(tmp_path: Path) -> None:
    """The demo's steps read the example's groups and files: on a scaffolded project it used to
    plan and apply that project into a demo store, then stop at step 4 on 'customer-features'."""
    target = tmp_path / "mine"
    assert run("init", str(target))[0] == 0
    code, _, err = run("--project", str(target), "demo")
    assert code == 1
    assert err.startswith(
        f"error: fsgen demo runs on fsgen's example card-fraud project, and {target} lacks "
        "group customer-features, group merchant-features, group purchases, "
        "feature set fraud-model, feature set spending, data/customers.csv"
    )
    assert "1. Validate" not in err and not (target / ".fsgen").exists()


def test_demo_validate_step_lists_an_aggregation_groups_features(tmp_path: Path) -> None:
    """The purchases group's features are its aggregation windows, not an empty list."""
    from fsgen.config import load_config
    from fsgen.demo import step_validate
    from fsgen.demo_context import DemoContext

    said: list[str] = []

    class Recording(DemoContext):
        def say(self, text: str) -> None:
            said.append(text)

    step_validate(Recording(config=load_config(REPO), workdir=tmp_path))
    (line,) = [s for s in said if s.startswith("  purchases:")]
    assert line.endswith(
        "features avg_purchase_value_1d, avg_purchase_value_7d, avg_purchase_value_30d, "
        "purchase_count_1h, purchase_count_lifetime"
    ), line


def test_every_command_and_option_has_help_text() -> None:
    import click

    def walk(command: click.Command, path: str) -> list[str]:
        if isinstance(command, click.Group):
            return [m for n, c in command.commands.items() for m in walk(c, f"{path} {n}")]
        missing = [] if command.help else [f"{path}: no help"]
        missing += [
            f"{path} {p.opts[0]}"
            for p in command.params
            if isinstance(p, click.Option) and not p.help and not p.hidden
        ]
        return missing

    assert walk(main, "fsgen") == []


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from fsgen.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('pandas', 'duckdb', 'boto3', 'botocore', 'pyarrow', "
        "'pydantic', 'jinja2', 'rich') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_the_readme_command_list_names_every_option() -> None:
    """The README's synopsis under "Command line" lists every command and each of its options,
    so a user reading it sees what --help would show."""
    import re

    import click

    readme = (REPO / "README.md").read_text()
    start = readme.index("## Command line")
    block = readme[start : readme.index("```", readme.index("```", start) + 3)]
    entries: dict[str, list[str]] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("fsgen "):
            current = line
            entries[current] = [line]
        elif current and line.startswith(" "):
            entries[current].append(line)

    def walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
        if isinstance(command, click.Group):
            return [m for n, c in command.commands.items() for m in walk(c, f"{path} {n}")]
        return [(path, command)]

    missing = []
    for name, command in walk(main, "fsgen"):
        found = [k for k in entries if k == name or k.startswith(name + " ")]
        if not found:
            missing.append(name)
            continue
        text = "\n".join(entries[found[0]])
        for param in command.params:
            flags = [o for o in getattr(param, "opts", []) if o.startswith("--")]
            if isinstance(param, click.Option) and flags and flags[0] != "--help":
                if not re.search(re.escape(flags[0]) + r"\b", text):
                    missing.append(f"{name} {flags[0]}")
    assert missing == []
