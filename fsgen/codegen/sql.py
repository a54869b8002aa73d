"""Athena (Trino) identifiers and the latest-snapshot query of a group.

Identifiers are validated before they are quoted: a name that SageMaker or Glue could not hold
is refused with the name and what it is, never passed through. Quoting doubles embedded
double quotes (Trino's rule), so even an odd but legal name cannot break out of its quotes.
"""

from __future__ import annotations

import re

from fsgen.errors import FsgenError
from fsgen.spec import GroupSpec

#: Glue database/table names and SageMaker feature names all fit this.
_IDENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$")

DEFAULT_DATABASE = "sagemaker_featurestore"


class SqlIdentifierError(FsgenError):
    """A name cannot be used as an Athena identifier."""


def ident(name: str, what: str = "identifier") -> str:
    """``name`` validated and double-quoted for Trino."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise SqlIdentifierError(
            f"{what} {name!r} is not a valid Athena identifier "
            "(1-255 letters, digits, '_' or '-', not starting with '-')"
        )
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def glue_table_name(group: GroupSpec) -> str:
    """The default Glue table name of a group's offline store in generated SQL.

    SageMaker names the real table ``<group>-<creation epoch>``; callers pass the actual
    name (``fsgen dataset --engine athena`` looks it up); generated files use this default.
    """
    return group.name.replace("-", "_")


def glue_table_placeholder(group: GroupSpec) -> str:
    """A quoted, clearly unreal table name for generated SQL: the real Glue table of a group's
    offline store is known only once SageMaker creates it (DescribeFeatureGroup's
    ``OfflineStoreConfig.DataCatalogConfig.TableName``), so the artifact names what to put
    there and fails loudly ("table not found") if run unchanged."""
    ident(group.name, "feature group")  # validated: no quote can break out
    return f'"<{group.name} offline store table>"'


def event_time_expr(group: GroupSpec, column: str | None = None) -> str:
    """The event time as a Trino timestamp: ISO-8601 strings parsed, epoch seconds converted."""
    col = column or ident(group.event_time.name, "event-time column")
    if group.event_time.dtype.scalar.value == "String":
        return f"from_iso8601_timestamp({col})"
    return f"from_unixtime({col})"
