"""SageMaker's Search over the feature-store resources ``FeatureGroup`` and ``FeatureMetadata``.

A property name is a dotted path into the resource as Search returns it (``FeatureGroupName``,
``OnlineStoreConfig.EnableOnlineStore``, ``FeatureDefinitions.FeatureType``; a path through a
list matches when any element does); ``Tags.<key>`` and ``Parameters.<key>`` name the value of
a tag or feature parameter. Filters of one expression are joined by its ``Operator`` (``And``
by default); ``NestedFilters`` match when one element of the named list satisfies all its
filters; ``SubExpressions`` nest. Comparisons are on text, numbers or timestamps as the values
are; ``Contains`` is a substring match, ``In`` a comma-separated list.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fsgen.backends.registry import ApiError, Registry
from fsgen.server.model import parse_timestamp

Resource = dict[str, Any]


def _validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def resources(registry: Registry, kind: str) -> list[Resource]:
    out: list[Resource] = []
    for entry in registry.snapshot()["groups"].values():
        desc = copy.deepcopy(entry["description"])
        if kind == "FeatureGroup":
            desc["Tags"] = copy.deepcopy(entry["tags"])
            out.append(desc)
            continue
        for definition in desc["FeatureDefinitions"]:
            meta = entry["metadata"].get(definition["FeatureName"], {})
            out.append(
                {
                    "FeatureGroupArn": desc["FeatureGroupArn"],
                    "FeatureGroupName": desc["FeatureGroupName"],
                    "FeatureName": definition["FeatureName"],
                    "FeatureType": definition["FeatureType"],
                    "CreationTime": desc["CreationTime"],
                    "LastModifiedTime": meta.get("LastModifiedTime", desc["CreationTime"]),
                    "Description": meta.get("Description", ""),
                    "Parameters": copy.deepcopy(meta.get("Parameters", [])),
                }
            )
    return out


def _values(node: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        if isinstance(node, list):
            yield from node
        else:
            yield node
        return
    if isinstance(node, list):
        if node and isinstance(node[0], dict) and "Key" in node[0] and "Value" in node[0]:
            for item in node:  # Tags.<key> / Parameters.<key>
                if item["Key"] == parts[0]:
                    yield from _values(item["Value"], parts[1:])
            return
        for item in node:
            yield from _values(item, parts)
        return
    if isinstance(node, dict) and parts[0] in node:
        yield from _values(node[parts[0]], parts[1:])


def _compare(actual: Any, operator: str, wanted: str | None) -> bool:
    if operator == "Exists":
        return actual is not None
    if operator == "NotExists":
        return actual is None
    if actual is None or wanted is None:
        return False
    if operator == "Contains":
        return wanted in str(actual)
    if operator == "In":
        return str(actual) in [w.strip() for w in wanted.split(",")]
    left: Any = str(actual).lower() if isinstance(actual, bool) else actual
    right: Any = wanted
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        number = parse_timestamp(wanted)
        if number is None:
            return False
        right = number
    else:
        left = str(left)
    ops = {
        "Equals": left == right,
        "NotEquals": left != right,
        "GreaterThan": left > right,
        "GreaterThanOrEqualTo": left >= right,
        "LessThan": left < right,
        "LessThanOrEqualTo": left <= right,
    }
    return ops[operator]


def _filter(resource: Any, item: dict[str, Any]) -> bool:
    operator = item.get("Operator", "Equals")
    wanted = item.get("Value")
    if operator not in ("Exists", "NotExists") and wanted is None:
        raise _validation(f"Filter on {item['Name']} with {operator} needs a Value")
    found = list(_values(resource, item["Name"].split(".")))
    if operator == "NotExists":
        return not found or all(v is None for v in found)
    if operator == "NotEquals":
        return all(_compare(v, operator, wanted) for v in found) if found else True
    return any(_compare(v, operator, wanted) for v in found)


def _matches(resource: Resource, expression: dict[str, Any]) -> bool:
    checks: list[bool] = [_filter(resource, f) for f in expression.get("Filters", [])]
    for nested in expression.get("NestedFilters", []):
        items = list(_values(resource, nested["NestedPropertyName"].split(".")))
        checks.append(any(all(_filter(i, f) for f in nested["Filters"]) for i in items))
    checks.extend(_matches(resource, sub) for sub in expression.get("SubExpressions", []))
    if not checks:
        return True
    return any(checks) if expression.get("Operator") == "Or" else all(checks)


def search(registry: Registry, request: dict[str, Any]) -> dict[str, Any]:
    kind = request["Resource"]
    if kind not in ("FeatureGroup", "FeatureMetadata"):
        raise _validation(
            f"fsgen serve searches FeatureGroup and FeatureMetadata resources, not {kind}"
        )
    rows = [
        r for r in resources(registry, kind) if _matches(r, request.get("SearchExpression", {}))
    ]
    sort_by = request.get("SortBy") or "CreationTime"
    rows.sort(
        key=lambda r: (
            str(next(_values(r, sort_by.split(".")), "")),
            r.get("FeatureGroupName", ""),
            r.get("FeatureName", ""),
        ),
        reverse=request.get("SortOrder", "Descending") == "Descending",
    )
    if sort_by == "CreationTime":
        rows.sort(
            key=lambda r: float(r["CreationTime"]),
            reverse=request.get("SortOrder", "Descending") == "Descending",
        )
    token = request.get("NextToken")
    if token is not None and (not token.isdigit() or int(token) > len(rows)):
        raise _validation(f"Invalid pagination token {token!r}")
    start = int(token or 0)
    limit = int(request.get("MaxResults") or 10)
    out: dict[str, Any] = {"Results": [{kind: r} for r in rows[start : start + limit]]}
    if start + limit < len(rows):
        out["NextToken"] = str(start + limit)
    return out
