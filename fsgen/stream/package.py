"""``fsgen package lambda GROUP``: the stream handler's deployment zip.

Contents, and nothing else: the generated handler module and the group's generated
``runtime.py`` with their package ``__init__`` files, the definitions package
(``featuredefs/``), ``fsgen/runtime/`` (standard library only), and an
``fsgen/__init__.py`` whose authoring names are the inert stand-ins of
:mod:`fsgen.runtime.declarations` (the real ones need pydantic, which a Lambda does not have;
the decorators return the same functions either way). boto3 comes with the Lambda runtime.

The zip is deterministic (sorted entries, fixed timestamps, fixed permissions), and it is
verified before it is returned: a fresh interpreter with no site-packages (``python -I -S``)
imports the handler from the zip alone and runs one Kinesis record through it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fsgen.config import ProjectConfig
from fsgen.errors import FsgenError
from fsgen.runtime.declarations import LAMBDA_INIT
from fsgen.spec import ProjectSpec

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


class PackageError(FsgenError):
    """The deployment package cannot be built or does not import on its own."""


@dataclass(frozen=True)
class LambdaPackage:
    group: str
    path: Path
    handler: str
    files: tuple[str, ...]
    size: int

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "path": str(self.path),
            "handler": self.handler,
            "files": len(self.files),
            "bytes": self.size,
        }


def _snake(name: str) -> str:
    text = re.sub(r"[^0-9a-zA-Z_]", "_", name).lower()
    return f"_{text}" if text[:1].isdigit() else text


def _python_files(root: Path, package_dir: Path) -> list[tuple[str, Path]]:
    return [
        (str(p.relative_to(root)), p)
        for p in sorted(package_dir.rglob("*.py"))
        if "__pycache__" not in p.parts
    ]


def contents(
    config: ProjectConfig, spec: ProjectSpec, group: str, module: str = "stream_handler"
) -> dict[str, bytes]:
    """Archive name -> bytes of everything the zip holds (``module``: the generated module
    it is for, ``stream_handler`` or ``spark_job``)."""
    spec.group(group)  # NotFound names the known groups
    root = config.root
    gen = config.generated_path
    handler = gen / "groups" / _snake(group) / f"{module}.py"
    if not handler.is_file():
        raise PackageError(f"{handler.relative_to(root)} does not exist; run 'fsgen generate'")
    files: dict[str, bytes] = {}
    gen_name = config.generated_dir.strip("/")
    for init in (
        gen / "__init__.py",
        gen / "groups" / "__init__.py",
        gen / "groups" / _snake(group) / "__init__.py",
    ):
        files[f"{gen_name}/{init.relative_to(gen)}"] = init.read_bytes() if init.is_file() else b""
    files[f"{gen_name}/groups/{_snake(group)}/{module}.py"] = handler.read_bytes()
    runtime = handler.with_name("runtime.py")
    if not runtime.is_file():
        raise PackageError(f"{runtime.relative_to(root)} does not exist; run 'fsgen generate'")
    files[f"{gen_name}/groups/{_snake(group)}/runtime.py"] = runtime.read_bytes()
    defs = root / config.definitions.replace(".", "/")
    if not defs.is_dir():
        raise PackageError(f"definitions package {config.definitions!r} not found in {root}")
    for name, path in _python_files(root, defs):
        files[name] = path.read_bytes()
    for path in sorted(RUNTIME_DIR.glob("*.py")):
        files[f"fsgen/runtime/{path.name}"] = path.read_bytes()
    files["fsgen/__init__.py"] = LAMBDA_INIT.encode()
    return files


def build(
    config: ProjectConfig,
    spec: ProjectSpec,
    group: str,
    output: Path | None = None,
    verify: bool = True,
) -> LambdaPackage:
    """Write the zip (default ``<store>/lambda/<group>.zip``) and verify it imports alone."""
    files = contents(config, spec, group)
    target = output or config.store_path / "lambda" / f"{group}.zip"
    write_zip(files, target)
    module = (
        f"{config.generated_dir.strip('/').replace('/', '.')}.groups.{_snake(group)}.stream_handler"
    )
    package = LambdaPackage(
        group, target, f"{module}.handler", tuple(sorted(files)), target.stat().st_size
    )
    if verify:
        check_imports_alone(package, module)
    return package


def build_glue(
    config: ProjectConfig, spec: ProjectSpec, group: str, output: Path | None = None
) -> LambdaPackage:
    """The Glue job's ``--extra-py-files`` zip, ``fsgen-glue-<group>.zip``, next to a copy of
    its script ``spark_job.py`` (default directory ``<store>/glue/<group>/``; upload both to
    the stack's ``s3://ArtifactsBucket/ArtifactsPrefix/``). The same contents as the Lambda
    zip with the Spark job instead of the stream handler; verified to import alone."""
    if spec.group(group).aggregations:
        raise PackageError(
            f"{group}: its features are aggregations, which the Spark job does not compute yet"
        )
    files = contents(config, spec, group, "spark_job")
    directory = output or config.store_path / "glue" / group
    target = directory / f"fsgen-glue-{group}.zip"
    write_zip(files, target)
    module = f"{config.generated_dir.strip('/').replace('/', '.')}.groups.{_snake(group)}.spark_job"
    (directory / "spark_job.py").write_bytes(files[module.replace(".", "/") + ".py"])
    package = LambdaPackage(
        group, target, f"{module}.main", tuple(sorted(files)), target.stat().st_size
    )
    check_imports_alone(package, module)
    return package


def write_zip(files: dict[str, bytes], target: Path) -> None:
    """A deterministic zip: sorted entries, fixed time and permissions; written atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    tmp.replace(target)


_CHECK = """
import json, sys
sys.path[:0] = [sys.argv[1]]
import importlib
handler = importlib.import_module(sys.argv[2])
heavy = sorted(m for m in ("pydantic", "pandas", "duckdb", "pyarrow", "numpy", "jinja2", "click")
               if m in sys.modules)
outside = sorted(m for m in sys.modules if m.startswith("fsgen.") and
                 not m.startswith("fsgen.runtime"))
print(json.dumps({"group": handler.RUNTIME.name, "heavy": heavy, "outside": outside,
                  "file": handler.__file__}))
"""


def check_imports_alone(package: LambdaPackage, module: str) -> None:
    """Import the handler in ``python -I -S`` with only the zip on the path."""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _CHECK, str(package.path), module],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise PackageError(
            f"{package.path}: the handler does not import from the zip alone: {tail[0]}"
        )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if info["heavy"] or info["outside"] or package.group != info["group"]:
        raise PackageError(f"{package.path}: the handler pulled in {info}")
    if not str(info["file"]).startswith(str(package.path)):
        raise PackageError(f"{package.path}: the handler was imported from {info['file']}")
