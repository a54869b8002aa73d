"""Two projects in one interpreter: another project's ``generated`` package already imported
must not hide (or replace) this project's generated stream handler and runtime."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from fsgen.bind import generated_runtime
from fsgen.config import ProjectConfig
from fsgen.spec import ProjectSpec
from fsgen.stream.events import load_handler


def test_another_projects_generated_package_does_not_hide_ours(
    example: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    config, spec = example
    other = tmp_path / "other" / "generated"
    (other / "groups").mkdir(parents=True)
    (other / "__init__.py").write_text("")
    (other / "groups" / "__init__.py").write_text("")
    saved = {n: m for n, m in sys.modules.items() if n == "generated" or n.startswith("generated.")}
    try:
        for name in saved:
            del sys.modules[name]
        fake = types.ModuleType("generated")
        fake.__path__ = [str(other)]
        sys.modules["generated"] = fake

        handler = load_handler(config, spec, "customer-features")
        assert handler.note.startswith("running generated."), handler.note
        runtime, note = generated_runtime(config, spec, "customer-features")
        assert note.startswith("running generated."), note
        assert runtime.name == "customer-features"
        assert (
            Path(sys.modules["generated"].__path__[0]).resolve()
            == (config.root / "generated").resolve()
        )
    finally:
        for name in [n for n in sys.modules if n == "generated" or n.startswith("generated.")]:
            del sys.modules[name]
        sys.modules.update(saved)
