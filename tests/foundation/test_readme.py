"""The README's code blocks run, so they cannot rot.

Every fenced block with a language is executed, in README order, in a copy of the example
project that has been generated and applied:

- ```python: in a fresh interpreter from the project root; a ``print(...)  # text`` line must
  print exactly ``text`` (or ``text`` must start with what it printed and a " (" remark);
- ```sh: line by line with bash (``python`` is this interpreter), each must exit 0;
- ```toml: merged into the project's pyproject.toml, which fsgen must accept.

A block with a language that is only illustrative has ``<!-- illustrative -->`` on the line
before it and is skipped; blocks without a language are text (output, layouts, synopses).
The boto3 block's ``http://127.0.0.1:4510`` is pointed at an ``fsgen serve`` on a free port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
RUNS = ("python", "sh", "toml")
MARK = "<!-- illustrative -->"


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    illustrative: bool


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.fullmatch(r"```([\w-]*)", lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while lines[i] != "```":
            body.append(lines[i])
            i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        found.append(Block(start + 1, m.group(1), "\n".join(body) + "\n", before.strip() == MARK))
        i += 1
    return found


ALL = blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [b for b in ALL if b.lang and not b.illustrative]


def test_every_block_with_a_language_is_run_or_marked() -> None:
    unknown = [b for b in ALL if b.lang and b.lang not in RUNS and not b.illustrative]
    assert not unknown, [f"README.md:{b.line}: ```{b.lang}" for b in unknown]
    assert {b.lang for b in RUNNABLE} == set(RUNS)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The example project, generated and applied, and an ``fsgen serve`` over its store."""
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.server import make_server

    root = tmp_path_factory.mktemp("readme") / "example"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    for name in ("featuredefs", "data", "generated"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    fsgen = [sys.executable, "-m", "fsgen.cli", "--project", str(root)]
    subprocess.run([*fsgen, "apply", "--auto-approve"], check=True, capture_output=True)
    server = make_server(load_config(root), load(root), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, server.url
    finally:
        server.shutdown()
        server.server_close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSGEN_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    return env


def _expected_prints(code: str) -> list[str]:
    return [
        m.group(1).strip()
        for line in code.splitlines()
        if (m := re.match(r"\s*print\(.*\)\s+#\s*(.+)$", line))
    ]


def _run_python(block: Block, root: Path, url: str) -> None:
    code = block.body.replace("http://127.0.0.1:4510", url)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, f"README.md:{block.line}:\n{result.stderr}"
    printed = result.stdout.splitlines()
    expected = _expected_prints(code)
    assert len(printed) == len(expected), (block.line, printed)
    for got, want in zip(printed, expected, strict=True):
        assert got == want or want.startswith(got + " ("), f"README.md:{block.line}: {got!r}"


def _run_sh(block: Block, root: Path) -> None:
    for line in block.body.splitlines():
        command = line.split("  #", 1)[0].strip()
        if not command or command.startswith("#"):
            continue
        result = subprocess.run(
            ["bash", "-c", command], cwd=root, env=_env(), capture_output=True, text=True
        )
        assert result.returncode == 0, f"README.md:{block.line}: {command}\n{result.stderr}"


def _run_toml(block: Block, root: Path, tmp_path: Path) -> None:
    import tomllib

    from fsgen.catalog.model import value_statistics_optins
    from fsgen.config import load_config
    from fsgen.loader import load

    tomllib.loads(block.body)  # valid TOML on its own
    project = tmp_path / "toml"
    shutil.copytree(root, project, ignore=shutil.ignore_patterns(".fsgen", "generated"))
    if "[tool.fsgen]" in block.body:  # a whole configuration: it is the project's
        text = '[project]\nname = "readme"\nversion = "0"\n\n' + block.body
    else:  # a table to add to the example's configuration
        text = (REPO / "pyproject.toml").read_text() + "\n" + block.body
    (project / "pyproject.toml").write_text(text)
    config = load_config(project)
    value_statistics_optins(config, load(project))  # names real features, with reasons


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: f"README.md:{b.line}:{b.lang}")
def test_readme_block_runs(block: Block, example: tuple[Path, str], tmp_path: Path) -> None:
    root, url = example
    if block.lang == "python":
        _run_python(block, root, url)
    elif block.lang == "sh":
        _run_sh(block, root)
    else:
        _run_toml(block, root, tmp_path)
