"""Generated Python passes the project's own tools: ruff format --check, ruff check, mypy.
And the literal formatter behind it produces what ruff format leaves alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from codegen_helpers import GOLDEN, REPO, SCENARIOS
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.codegen.pyfmt import Call, literal, statement

BIN = Path(sys.executable).parent
ROOTS = {
    "example": (REPO, "featuredefs"),
    "shop": (GOLDEN / "shop", "shopdefs"),
    "rides": (GOLDEN / "rides", "ridedefs"),
    "overrides": (GOLDEN / "overrides", "orderdefs"),
    "baskets": (GOLDEN / "baskets", "basketdefs"),
}
assert set(ROOTS) == {"example", *SCENARIOS}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", list(ROOTS))
def test_generated_python_is_formatted_and_lint_clean(name: str) -> None:
    root, package = ROOTS[name]
    config = str(REPO / "pyproject.toml")
    fmt = _run(
        str(BIN / "ruff"),
        "format",
        "--check",
        "--isolated",
        "--line-length",
        "100",
        "generated",
        cwd=root,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = _run(
        str(BIN / "ruff"),
        "check",
        "--config",
        config,
        "--config",
        f"lint.isort.known-first-party = ['fsgen', '{package}']",
        "--no-cache",
        "generated",
        cwd=root,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_generated_python_type_checks(tmp_path: Path) -> None:
    for name, (root, _) in ROOTS.items():
        proc = _run(
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy"),
            "--follow-imports",
            "silent",
            "generated",
            cwd=root,
        )
        assert proc.returncode == 0, f"{name}:\n{proc.stdout}{proc.stderr}"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.tuples(inner, inner),
        st.tuples(inner),
        st.dictionaries(st.text(max_size=20), inner, max_size=5),
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(values)
def test_literals_round_trip(value: object) -> None:
    assert ast.literal_eval(literal(value)) == value


def test_literals_are_what_ruff_format_keeps(tmp_path: Path) -> None:
    """A batch of nested literals of every width, formatted once by ruff: no change."""
    rng_values: list[object] = [
        tuple(f"field_{i}" * (i % 7) for i in range(n)) for n in range(0, 30, 3)
    ]
    rng_values += [
        {"k" * i: [i * 1.5, "v" * (i * 3), None, (i,)] for i in range(n)} for n in range(1, 12, 2)
    ]
    rng_values += [
        Call("FeatureDef", kwargs=(("name", "x" * n), ("params", (("a", "raw"),) * n)))
        for n in range(1, 40, 6)
    ]
    rng_values += ["it's", 'say "hi"', "both ' and \"", "tab\tnew\nline", "ünïcode"]
    text = "".join(statement(f"V{i}", v) + "\n" for i, v in enumerate(rng_values))
    target = tmp_path / "sample.py"
    target.write_text(text)
    proc = _run(
        str(BIN / "ruff"),
        "format",
        "--isolated",
        "--line-length",
        "100",
        "--diff",
        str(target),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
