"""Project configuration: ``[tool.fsgen]`` in pyproject.toml.

```toml
[tool.fsgen]
project = "churn-model"          # the project's identity (default: [project].name)
definitions = "featuredefs"      # the definitions package
generated_dir = "generated"
store_dir = ".fsgen"             # the local store, its state and history
backend = "local"                # default backend

[tool.fsgen.aws]                 # the aws profile
region = "us-east-1"
role_arn = "arn:aws:iam::123456789012:role/fsgen"
offline_s3_uri = "s3://bucket/prefix"
kms_key_id = "..."               # optional
endpoint_url = "http://127.0.0.1:4510"   # optional: fsgen serve, or any compatible endpoint
```

A project's identity (``project``) is what makes its feature groups its own on a shared account,
``fsgen serve`` or store directory: it is the ``fsgen:project`` tag of every group it creates, and
plan considers only groups carrying it. It also names the default offline S3 prefix and the
catalog. Without ``project`` it is ``[project].name`` normalized (PEP 503: lowercase, runs of
``-_.`` become ``-``), and without that the definitions package name, which was every project's
identity before projects had their own.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from fsgen.errors import ConfigError

Backend = Literal["local", "aws"]

PROJECT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PROJECT_RULE = (
    "1-63 lowercase letters, digits or '-', starting and ending with a letter or digit "
    "(it becomes the fsgen:project tag and part of the default S3 URI)"
)


def normalize_project_name(name: str) -> str:
    """``My_Shop.Features`` -> ``my-shop-features`` (PEP 503 normalization)."""
    return re.sub(r"[-_.\s]+", "-", name).lower().strip("-")


class AwsProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = "us-east-1"
    role_arn: str | None = None
    offline_s3_uri: str | None = None
    kms_key_id: str | None = None
    online_kms_key_id: str | None = None
    endpoint_url: str | None = None
    runtime_endpoint_url: str | None = None
    athena_workgroup: str = "primary"
    athena_output_s3_uri: str | None = None
    glue_database: str = "sagemaker_featurestore"
    dead_letter: str | None = None
    """Where stream handlers send poison records: an SQS queue URL or s3://bucket/prefix (the
    deployed Lambda gets it as FSGEN_DEAD_LETTER; the stream handler's IAM policy allows it)."""


class CatalogProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    value_statistics: dict[str, str] = {}
    """``"group:feature" = "reason"``: personal, sensitive or pseudonymous features whose value
    statistics (min/max/mean, histogram, top values) the catalog publishes after a review; the
    reason is shown on the feature's page. Without an entry it shows counts and null rates."""


class ProjectConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path
    project: str
    """The project's identity: see the module docstring."""
    definitions: str = "featuredefs"
    generated_dir: str = "generated"
    store_dir: str = ".fsgen"
    backend: Backend = "local"
    aws: AwsProfile = AwsProfile()
    catalog: CatalogProfile = CatalogProfile()

    @model_validator(mode="before")
    @classmethod
    def _default_project(cls, data: object) -> object:
        if isinstance(data, dict) and "project" not in data:
            return {**data, "project": data.get("definitions", "featuredefs")}
        return data

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        if not PROJECT_NAME.match(value):
            raise ValueError(f"identity {value!r} must be {PROJECT_RULE}")
        return value

    @property
    def generated_path(self) -> Path:
        return self.root / self.generated_dir

    @property
    def store_path(self) -> Path:
        return self.root / self.store_dir


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` whose pyproject.toml has [tool.fsgen]."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and "fsgen" in _read_toml(pyproject).get("tool", {}):
            return candidate
    raise ConfigError(
        f"no pyproject.toml with a [tool.fsgen] table at or above {here}; "
        "run 'fsgen init DIR' or pass --project DIR"
    )


def load_config(root: Path | None = None) -> ProjectConfig:
    root = find_project_root(root) if root is None or not _has_fsgen(root) else root.resolve()
    pyproject = _read_toml(root / "pyproject.toml")
    table: dict[str, Any] = dict(pyproject.get("tool", {}).get("fsgen", {}))  # type: ignore[call-overload]
    name = pyproject.get("project", {}).get("name")
    derived = (
        "project" not in table and isinstance(name, str) and bool(normalize_project_name(name))
    )
    if derived:
        table["project"] = normalize_project_name(str(name))
    try:
        return ProjectConfig(root=root, **table)
    except ValidationError as exc:
        problems = "; ".join(_problem(err, derived) for err in exc.errors())
        raise ConfigError(f"{root / 'pyproject.toml'} [tool.fsgen]: {problems}") from None


def _problem(err: Any, derived: bool) -> str:
    where = ".".join(str(p) for p in err["loc"])
    text = f"{where}: {str(err['msg']).removeprefix('Value error, ')}"
    if derived and where == "project":
        text += " (taken from [project].name; set [tool.fsgen] project to choose the identity)"
    return text


def _has_fsgen(root: Path) -> bool:
    pyproject = root / "pyproject.toml"
    return pyproject.is_file() and "fsgen" in _read_toml(pyproject).get("tool", {})


def _read_toml(path: Path) -> dict[str, dict[str, object]]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
