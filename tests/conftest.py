"""Shared fixtures: build throw-away projects from definition source text."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PYPROJECT = """\
[project]
name = "scratch"
version = "0"

[tool.fsgen]
definitions = "{package}"
"""


def write_project(root: Path, files: dict[str, str], package: str = "featuredefs") -> Path:
    """A project at ``root`` with ``files`` (relative path -> source, dedented)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(package=package))
    (root / package).mkdir(exist_ok=True)
    init = root / package / "__init__.py"
    if not init.exists():
        init.write_text("")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """``make_project({"featuredefs/x.py": src})`` -> project root in a fresh tmp dir."""
    counter = iter(range(1000))

    def make(files: dict[str, str], package: str = "featuredefs") -> Path:
        return write_project(tmp_path / f"p{next(counter)}", files, package)

    return make


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on a free loopback port for one test module; boto3 reaches it over real
    HTTP (never a patched client)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _example_modules() -> dict[str, object]:
    return {
        n: m for n, m in sys.modules.items() if n == "featuredefs" or n.startswith("featuredefs.")
    }


@pytest.fixture(autouse=True)
def _restore_sys_path() -> object:
    """Loading a project puts its root on sys.path and its definitions in sys.modules; keep
    tests independent of each other (a throw-away project's 'featuredefs' package must not
    shadow the example's for a later test that resolves its functions by module name)."""
    before = list(sys.path)
    modules = _example_modules()
    yield
    sys.path[:] = before
    for name in _example_modules().keys() - modules.keys():
        del sys.modules[name]
    sys.modules.update(modules)  # type: ignore[arg-type]


def apply_local(root: Path) -> None:
    """``fsgen apply --auto-approve`` on the local backend: records go only to deployed
    groups, as on SageMaker. The modules and sys.path entries the apply loaded (the
    project's definitions and generated packages) are put back as they were, so a project
    copy's packages never stand in for the repository's in later tests."""
    from click.testing import CliRunner

    from fsgen.cli import main

    path, modules = list(sys.path), dict(sys.modules)
    try:
        result = CliRunner().invoke(main, ["--project", str(root), "apply", "--auto-approve"])
    finally:
        sys.path[:] = path
        project = str(root.resolve())
        for name, module in list(sys.modules.items()):
            where = str(getattr(module, "__file__", None) or "")
            paths = [str(p) for p in getattr(module, "__path__", None) or []]
            if any(p.startswith(project) for p in (where, *paths) if p):
                del sys.modules[name]
        sys.modules.update({n: m for n, m in modules.items() if n not in sys.modules})
    assert result.exit_code == 0, result.output + result.stderr


@pytest.fixture(scope="session")
def deploy() -> Callable[[Path], None]:
    """Deploy a project's groups into its local store (see :func:`apply_local`)."""
    return apply_local
