"""The Athena table-maintenance statements of each group whose offline store is an Iceberg
table (``Offline(table_format="Iceberg")``): ``groups/<group>/maintenance.athena.sql``.

SageMaker writes an Iceberg group's offline store in many small files; Athena's ``OPTIMIZE ...
REWRITE DATA USING BIN_PACK`` rewrites them into fewer, larger ones (no query result changes)
and ``VACUUM`` expires old snapshots and deletes the files no snapshot needs any more. Glue-format
groups get no such file: their tables are plain Hive partitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fsgen.codegen import sql, views

if TYPE_CHECKING:
    from fsgen.codegen.artifacts import Artifact, BuildContext
    from fsgen.config import ProjectConfig
    from fsgen.spec import GroupSpec


@dataclass(frozen=True)
class MaintenanceView:
    group: str
    table: str
    """``<database>.<table>``, both quoted (the table a placeholder until SageMaker names it)"""


def maintenance_view(group: GroupSpec, config: ProjectConfig) -> MaintenanceView:
    database = sql.ident(config.aws.glue_database, "Glue database")
    return MaintenanceView(
        group=group.name, table=f"{database}.{sql.glue_table_placeholder(group)}"
    )


def maintenance_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    for group in ctx.spec.groups:
        if not (group.offline.enabled and group.offline.table_format == "Iceberg"):
            continue
        yield ctx.artifact(
            f"groups/{views.snake(group.name)}/maintenance.athena.sql",
            kind="maintenance_sql",
            header=views.group_header(group),
            body=ctx.render("maintenance.athena.sql.jinja", m=maintenance_view(group, ctx.config)),
        )


__all__ = ["MaintenanceView", "maintenance_artifacts", "maintenance_view"]
