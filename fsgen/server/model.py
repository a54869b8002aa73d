"""Request validation, request parsing and response shaping driven by botocore's installed
service models (``sagemaker`` and ``sagemaker-featurestore-runtime``), so ``fsgen serve`` checks
exactly what the service model declares: required members, types, string and list lengths,
number ranges, patterns and enums.

Messages follow AWS's style::

    1 validation error detected: Value 'evil\\n' at 'featureGroupName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9]...

Member paths are lower camel case, list members ``featureDefinitions.1.member.featureName``
(1-based). Patterns must match the whole value (``re.fullmatch``): a trailing newline never
passes. A value of the wrong JSON type is a ``SerializationException`` (HTTP 400), as on AWS.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from fsgen.backends.registry import ApiError

CONTROL = "sagemaker"
RUNTIME = "sagemaker-featurestore-runtime"

CONTROL_OPERATIONS = (
    "CreateFeatureGroup",
    "DescribeFeatureGroup",
    "UpdateFeatureGroup",
    "DeleteFeatureGroup",
    "ListFeatureGroups",
    "DescribeFeatureMetadata",
    "UpdateFeatureMetadata",
    "Search",
    "AddTags",
    "ListTags",
    "DeleteTags",
)
"""The feature-store subset of the ``sagemaker`` service that ``fsgen serve`` answers."""


@functools.cache
def service(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def operation(service_name: str, name: str) -> Any:
    return service(service_name).operation_model(name)


def runtime_operations() -> tuple[str, ...]:
    return tuple(service(RUNTIME).operation_names)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v).strip("'") for v in value) + "]"
    text = str(value)
    return f"'{text if len(text) <= 200 else text[:200] + '...'}'"


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, value: object, path: str, constraint: str) -> None:
        self.errors.append(
            f"Value {_show(value)} at '{path}' failed to satisfy constraint: {constraint}"
        )

    def check(self, shape: Any, value: object, path: str) -> None:
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            if not isinstance(value, dict):
                raise _serialization(path, "an object")
            for name in shape.required_members:
                if value.get(name) is None:
                    self.fail(None, _join(path, name), "Member must not be null")
            for name, member in shape.members.items():
                if value.get(name) is not None:
                    self.check(member, value[name], _join(path, name))
            return
        if kind == "list":
            if not isinstance(value, list):
                raise _serialization(path, "a list")
            self._length(meta, value, len(value), path)
            for i, item in enumerate(value, 1):
                if item is None:
                    self.fail(None, f"{path}.{i}.member", "Member must not be null")
                else:
                    self.check(shape.member, item, f"{path}.{i}.member")
            return
        if kind == "map":
            if not isinstance(value, dict):
                raise _serialization(path, "an object")
            self._length(meta, value, len(value), path)
            for key, item in value.items():
                self.check(shape.key, key, f"{path}.{key}.key")
                self.check(shape.value, item, f"{path}.{key}.value")
            return
        if kind == "string":
            if not isinstance(value, str):
                raise _serialization(path, "a string")
            self._length(meta, value, len(value), path)
            pattern = meta.get("pattern")
            if pattern is not None and _compiled(pattern).fullmatch(value) is None:
                self.fail(value, path, f"Member must satisfy regular expression pattern: {pattern}")
            enum = shape.enum
            if enum and value not in enum:
                self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
            return
        if kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise _serialization(path, "an integer")
            self._range(meta, value, path)
            return
        if kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _serialization(path, "a number")
            self._range(meta, value, path)
            return
        if kind == "boolean":
            if not isinstance(value, bool):
                raise _serialization(path, "a boolean")
            return
        if kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise _serialization(path, "a timestamp")
            if parse_timestamp(value) is None:
                raise _serialization(path, "a timestamp")
            return

    def _length(self, meta: Mapping[str, Any], value: object, size: int, path: str) -> None:
        if "min" in meta and size < meta["min"]:
            self.fail(
                value, path, f"Member must have length greater than or equal to {meta['min']}"
            )
        if "max" in meta and size > meta["max"]:
            self.fail(value, path, f"Member must have length less than or equal to {meta['max']}")

    def _range(self, meta: Mapping[str, Any], value: float, path: str) -> None:
        if "min" in meta and value < meta["min"]:
            self.fail(value, path, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            self.fail(value, path, f"Member must have value less than or equal to {meta['max']}")


def _join(path: str, name: str) -> str:
    return f"{path}.{_camel(name)}" if path else _camel(name)


@functools.cache
def _separators() -> str:
    import sys
    import unicodedata

    return "".join(
        f"\\u{i:04x}"
        for i in range(min(sys.maxunicode, 0xFFFF) + 1)
        if unicodedata.category(chr(i)).startswith("Z")
    )


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """The model's (Java) pattern in Python's dialect: ``\\p{L}`` / ``\\p{N}`` (letters,
    numbers) and ``\\p{Z}`` (separators) inside classes, and UTF-16 surrogate pairs as
    code-point ranges."""
    python = (
        pattern.replace("\\p{L}", "\\w")
        .replace("\\p{N}", "\\w")
        .replace("\\p{Z}", _separators())
        .replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF")
    )
    return re.compile(python, re.DOTALL)


def _serialization(path: str, expected: str) -> ApiError:
    where = path or "the request body"
    return ApiError("SerializationException", f"Expected {expected} at '{where}'", 400)


def parse_timestamp(value: object) -> float | None:
    """Epoch seconds of a JSON timestamp (epoch number or ISO-8601 text), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_dt.UTC)
        return parsed.timestamp()
    return None


def validate(operation_model: Any, request: object, error_code: str) -> None:
    """Raise ApiError(``error_code``) with AWS's message when ``request`` breaks the input
    shape's constraints (SerializationException for a value of the wrong type)."""
    checker = _Checker()
    shape = operation_model.input_shape
    if shape is None:
        return
    checker.check(shape, request, "")
    if checker.errors:
        n = len(checker.errors)
        noun = "error" if n == 1 else "errors"
        raise ApiError(
            error_code, f"{n} validation {noun} detected: " + "; ".join(checker.errors), 400
        )


# ----------------------------------------------------------------------- responses


def conform(shape: Any, value: Any) -> Any:
    """``value`` reduced to the members ``shape`` declares (what botocore parses), timestamps
    as epoch seconds; used on every response so none carries a member the model lacks."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return value
        return {
            name: conform(shape.members[name], item)
            for name, item in value.items()
            if name in shape.members and item is not None
        }
    if kind == "list":
        return [conform(shape.member, item) for item in value]
    if kind == "map":
        return {key: conform(shape.value, item) for key, item in value.items()}
    if kind == "timestamp" and not isinstance(value, int | float):
        parsed = parse_timestamp(value)
        return value if parsed is None else parsed
    return value


# ------------------------------------------------------------------------ REST routes


@functools.cache
def _routes() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """(method, compiled requestUri template, operation) of every runtime operation."""
    out = []
    for name in runtime_operations():
        http = operation(RUNTIME, name).http
        template = http["requestUri"].split("?")[0]
        regex = "".join(
            f"(?P<{part[1:-1].rstrip('+')}>[^/]+)" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", template)
        )
        out.append((http["method"], re.compile(regex), name))
    return tuple(out)


def route(method: str, raw_path: str) -> tuple[str, dict[str, str]]:
    """The runtime operation at ``method raw_path`` and its URI labels, each URL-decoded
    after matching (so an ARN's encoded ``/`` stays inside its label)."""
    path_matched = False
    for verb, regex, name in _routes():
        match = regex.fullmatch(raw_path)
        if match is None:
            continue
        path_matched = True
        if verb == method:
            return name, {k: unquote(v) for k, v in match.groupdict().items()}
    if path_matched:
        raise ApiError("UnknownOperationException", f"no operation at {method} {raw_path}", 405)
    raise ApiError("UnknownOperationException", f"no operation at {method} {raw_path}", 404)


def rest_request(
    name: str, labels: Mapping[str, str], query: Mapping[str, list[str]], body: dict[str, Any]
) -> dict[str, Any]:
    """The operation's request as boto3 gave it: body members, URI labels and query-string
    members placed by the model's ``location`` / ``locationName``."""
    shape = operation(RUNTIME, name).input_shape
    request: dict[str, Any] = {}
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        key = member_shape.serialization.get("name", member)
        if location == "uri":
            if key in labels:
                request[member] = labels[key]
        elif location == "querystring":
            if key in query:
                values = query[key]
                if member_shape.type_name == "list":
                    request[member] = list(values)
                elif member_shape.type_name in ("integer", "long"):
                    try:
                        request[member] = int(values[0])
                    except ValueError:
                        raise _serialization(_camel(member), "an integer") from None
                elif member_shape.type_name == "boolean":
                    request[member] = values[0] == "true"
                else:
                    request[member] = values[0]
        elif location is None and member in body:
            request[member] = body[member]
    return request


__all__ = [
    "CONTROL",
    "CONTROL_OPERATIONS",
    "RUNTIME",
    "conform",
    "operation",
    "parse_timestamp",
    "rest_request",
    "route",
    "runtime_operations",
    "validate",
]
