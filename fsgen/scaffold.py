"""``fsgen init``: a new project in which ``fsgen validate`` passes at once.

The project gets its own identity (``[tool.fsgen] project``, from ``--name`` or the directory's
name), so two scaffolded projects on one account, ``fsgen serve`` or store directory never
plan over each other's feature groups.
"""

from __future__ import annotations

from pathlib import Path

from fsgen.config import PROJECT_NAME, PROJECT_RULE, normalize_project_name
from fsgen.errors import FsgenError

_PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["fsgen"]

[tool.fsgen]
project = "{name}"
definitions = "featuredefs"
generated_dir = "generated"
store_dir = ".fsgen"
"""

_INIT = '"""Feature definitions of {name}."""\n'

_EXAMPLE = '''\
"""Example feature group: replace with your own entity, raw fields and features."""

from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, Online, Source, String

user = Entity("user_id", String, description="A user of the product")

user_activity = FeatureGroup(
    "user-activity",
    entity=user,
    event_time="event_time",
    online=Online(ttl="7d"),
    owner="{owner}",
    description="Daily activity per user",
    sources=[Source.batch("data/user_activity.csv")],
    max_staleness="2d",  # daily batches: fsgen freshness fails when two days pass without one
)


@user_activity.feature(Integral, description="Sessions in the last day")
def sessions(session_count: int) -> int:
    return max(session_count, 0)


@user_activity.feature(Fractional, description="Average session length in minutes")
def avg_session_minutes(total_minutes: float, session_count: int) -> float:
    return total_minutes / max(session_count, 1)


engagement_model = FeatureSet(
    "engagement-model",
    [sessions, avg_session_minutes],
    description="Predicts next-week engagement",
    owner="{owner}",
)
'''

_DATA = """\
user_id,event_time,session_count,total_minutes
u1,2024-01-01T00:00:00Z,3,42.5
u2,2024-01-01T00:00:00Z,0,0
u1,2024-01-02T00:00:00Z,5,61.0
"""

_GITIGNORE = ".fsgen/\n__pycache__/\n.venv/\n"


def scaffold(directory: Path, name: str | None = None) -> list[Path]:
    """Write the skeleton; refuse to overwrite an existing fsgen project or any file it would
    write (nothing is written then)."""
    directory = Path(directory)
    if (directory / "pyproject.toml").exists():
        raise FsgenError(f"{directory / 'pyproject.toml'} already exists; not overwriting it")
    name = project_name(directory, name)
    files = {
        "pyproject.toml": _PYPROJECT.format(name=name),
        "featuredefs/__init__.py": _INIT.format(name=name),
        "featuredefs/example.py": _EXAMPLE.format(owner=f"{name}-team"),
        "data/user_activity.csv": _DATA,
        ".gitignore": _GITIGNORE,
    }
    existing = [rel for rel in files if (directory / rel).exists()]
    if existing:
        raise FsgenError(
            f"{directory}: would overwrite {', '.join(existing)}; not writing anything "
            "(scaffold into a new or empty directory)"
        )
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def project_name(directory: Path, name: str | None) -> str:
    """The identity of a new project: ``name`` or the directory's name, normalized (lowercase,
    ``-`` for runs of other characters); refuses one that is still not a valid identity."""
    given = name if name is not None else Path(directory).resolve().name
    identity = normalize_project_name("".join(c if c.isalnum() else "-" for c in given))
    if not PROJECT_NAME.match(identity):
        source = f"--name {given!r}" if name is not None else f"the directory name {given!r}"
        raise FsgenError(
            f"cannot make a project identity of {source} (normalized: {identity!r}): it must be "
            f"{PROJECT_RULE}; pass --name NAME"
        )
    return identity
