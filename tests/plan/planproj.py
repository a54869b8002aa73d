"""Helpers for plan/apply tests: a one-group project whose definitions a test rewrites."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from fsgen.backends.local import LocalBackend
from fsgen.config import ProjectConfig, load_config
from fsgen.loader import load
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.plan.model import Plan
from fsgen.spec import ProjectSpec

PYPROJECT = """\
[project]
name = "scratch"
version = "0"

[tool.fsgen]
definitions = "defs"
{aws}
"""


@dataclass
class Defs:
    """Knobs of the test project's definitions; ``source()`` renders them."""

    ttl: str | None = "30d"
    online: bool = True
    storage: str = "Standard"
    throughput: str = "Throughput()"
    description: str = "Users of the shop"
    event_time: str = "ts"
    age_type: str = "Integral"
    age_description: str = "Age in years"
    age_body: str = "int(raw_age)"
    age_pii: str = "personal"
    tags: dict[str, str] = field(default_factory=lambda: {"domain": "user"})
    extra_features: int = 0
    with_score: bool = True
    second_group: bool = False

    def source(self) -> str:
        body = f"""
        from fsgen import Entity, FeatureGroup, Fractional, Integral, Online, String, Throughput

        user = Entity("user_id", String, description="A user")

        users = FeatureGroup(
            "users", entity=user, event_time={self.event_time!r},
            online=Online(enabled={self.online}, ttl={self.ttl!r}, storage={self.storage!r}),
            throughput={self.throughput}, owner="team-a",
            description={self.description!r}, tags={self.tags!r},
        )


        @users.feature({self.age_type}, description={self.age_description!r},
                       pii={self.age_pii!r})
        def age(raw_age: int) -> {"int" if self.age_type == "Integral" else "float"}:
            return {self.age_body}
        """
        if self.with_score:
            body += """

        @users.feature(Fractional, description="Spend score")
        def score(spend: float) -> float:
            return spend / 10
        """
        for i in range(self.extra_features):
            body += f"""

        @users.feature(Integral, description="extra {i}")
        def extra_{i}(raw_age: int) -> int:
            return raw_age + {i}
        """
        if self.second_group:
            body += """

        shop = Entity("shop_id", String)
        shops = FeatureGroup("shops", entity=shop, event_time="ts", owner="team-b",
                             description="Shops")


        @shops.feature(Integral, description="Rating")
        def rating(stars: int) -> int:
            return stars
        """
        return textwrap.dedent(body).lstrip()


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, defs: Defs, aws: str = "") -> Project:
        (self.root / "defs").mkdir(parents=True, exist_ok=True)
        (self.root / "pyproject.toml").write_text(PYPROJECT.format(aws=aws))
        (self.root / "defs" / "__init__.py").write_text("")
        (self.root / "defs" / "users.py").write_text(defs.source())
        return self

    @property
    def config(self) -> ProjectConfig:
        return load_config(self.root)

    @property
    def spec(self) -> ProjectSpec:
        return load(self.root)

    def backend(self) -> LocalBackend:
        return LocalBackend(self.config)

    def plan(self) -> Plan:
        return compute_plan(self.config, self.spec, self.backend(), artifacts=False)

    def apply(self, *, allow: bool = True) -> Plan:
        plan = self.plan()
        apply_plan(
            self.config, self.spec, self.backend(), plan, allow_destructive=allow, regenerate=False
        )
        return plan
