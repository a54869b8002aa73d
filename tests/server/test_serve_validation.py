"""Every constraint the service models document for the operations ``fsgen serve`` answers,
broken one at a time: a missing required member, a string or list too short or too long, a
number out of range, a value off its pattern or enum. Requests go through boto3 with its
client-side checks off (``parameter_validation=False``), so the server sees them as AWS would,
and each must answer 400 with AWS's code and message::

    1 validation error detected: Value ... at 'path' failed to satisfy constraint: ...

The cases are generated from botocore's shapes, starting from one valid request per operation;
the expected messages are written out here, not taken from the server.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from serverlib import REPO, stop

from fsgen.config import load_config
from fsgen.loader import load
from fsgen.server import FeatureStoreServer, serve_in_thread
from fsgen.server.model import CONTROL, CONTROL_OPERATIONS, RUNTIME, operation, runtime_operations

ARN = "arn:aws:sagemaker:us-east-1:123456789012:feature-group/g"
T0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
RECORD = [{"FeatureName": "id", "ValueAsString": "r"}, {"FeatureName": "t", "ValueAsString": T0}]
DEFS = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "t", "FeatureType": "String"},
]
TTL = {"Unit": "Hours", "Value": 1}

VALID: dict[str, dict[str, Any]] = {
    "CreateFeatureGroup": {
        "FeatureGroupName": "g2",
        "RecordIdentifierFeatureName": "id",
        "EventTimeFeatureName": "t",
        "FeatureDefinitions": DEFS,
        "OnlineStoreConfig": {"EnableOnlineStore": True, "TtlDuration": TTL},
        "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://b/p"}},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "Description": "d",
        "Tags": [{"Key": "k", "Value": "v"}],
    },
    "DescribeFeatureGroup": {"FeatureGroupName": "g"},
    "UpdateFeatureGroup": {
        "FeatureGroupName": "g",
        "FeatureAdditions": [{"FeatureName": "z", "FeatureType": "String"}],
    },
    "DeleteFeatureGroup": {"FeatureGroupName": "g"},
    "ListFeatureGroups": {
        "NameContains": "g",
        "FeatureGroupStatusEquals": "Created",
        "OfflineStoreStatusEquals": "Active",
        "SortOrder": "Ascending",
        "SortBy": "Name",
        "MaxResults": 10,
        "NextToken": "0",
    },
    "DescribeFeatureMetadata": {"FeatureGroupName": "g", "FeatureName": "id"},
    "UpdateFeatureMetadata": {
        "FeatureGroupName": "g",
        "FeatureName": "id",
        "Description": "d",
        "ParameterAdditions": [{"Key": "k", "Value": "v"}],
        "ParameterRemovals": ["k2"],
    },
    "Search": {
        "Resource": "FeatureGroup",
        "SearchExpression": {
            "Filters": [{"Name": "FeatureGroupName", "Operator": "Equals", "Value": "g"}],
            "Operator": "And",
        },
        "SortOrder": "Ascending",
        "MaxResults": 10,
    },
    "AddTags": {"ResourceArn": ARN, "Tags": [{"Key": "k", "Value": "v"}]},
    "ListTags": {"ResourceArn": ARN, "MaxResults": 50},
    "DeleteTags": {"ResourceArn": ARN, "TagKeys": ["k"]},
    "GetRecord": {
        "FeatureGroupName": "g",
        "RecordIdentifierValueAsString": "r",
        "FeatureNames": ["id"],
        "ExpirationTimeResponse": "Enabled",
    },
    "PutRecord": {
        "FeatureGroupName": "g",
        "Record": RECORD,
        "TargetStores": ["OnlineStore"],
        "TtlDuration": TTL,
    },
    "DeleteRecord": {
        "FeatureGroupName": "g",
        "RecordIdentifierValueAsString": "r",
        "EventTime": T0,
        "TargetStores": ["OnlineStore"],
        "DeletionMode": "SoftDelete",
    },
    "BatchGetRecord": {
        "Identifiers": [
            {
                "FeatureGroupName": "g",
                "RecordIdentifiersValueAsString": ["r"],
                "FeatureNames": ["id"],
            }
        ],
        "ExpirationTimeResponse": "Enabled",
    },
    "BatchWriteRecord": {
        "Entries": [
            {
                "FeatureGroupName": "g",
                "Record": RECORD,
                "TargetStores": ["OnlineStore"],
                "TtlDuration": TTL,
            }
        ],
        "TtlDuration": TTL,
    },
    "ListRecords": {"FeatureGroupName": "g", "MaxResults": 10, "IncludeSoftDeletedRecords": False},
    "UpdateRecord": {
        "FeatureGroupName": "g",
        "RecordIdentifierValueAsString": "r",
        "Features": [{"FeatureName": "t", "ValueAsString": T0}],
        "TargetStores": ["OnlineStore"],
        "TtlDuration": TTL,
    },
}

BAD_TEXT = ("evil\n", "!", " ", "x" * 3, "\x01")


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _pattern_breaker(meta: dict[str, Any]) -> str | None:
    pattern = re.compile(meta["pattern"], re.DOTALL) if "\\p" not in meta["pattern"] else None
    for text in BAD_TEXT:
        if not meta.get("min", 0) <= len(text) <= meta.get("max", 10**9):
            continue
        if pattern is None:
            if text == "!" and "!" not in meta["pattern"]:
                return text
            continue
        if pattern.fullmatch(text) is None:
            return text
    return None


def at(wire: str, constraint: str) -> str:
    return f"at '{wire}' failed to satisfy constraint: Member must {constraint}"


def cases(
    shape: Any, value: Any, path: str, wire: str, label: bool = False, query: bool = False
) -> Iterator[tuple[str, Any, str]]:
    """(what, replacement value or DELETE, expected message part) for each constraint of
    ``shape`` reachable in ``value``; ``wire`` is AWS's member path."""
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        for name, member in shape.members.items():
            sub = f"{wire}.{_camel(name)}" if wire else _camel(name)
            is_label = member.serialization.get("location") == "uri"
            is_query = member.serialization.get("location") == "querystring"
            if name in shape.required_members and name in value and not is_label:
                yield (
                    f"{path}.{name} missing",
                    ("DELETE", path, name),
                    "Value null " + at(sub, "not be null"),
                )
            if name in value:
                yield from cases(member, value[name], f"{path}.{name}", sub, is_label, is_query)
        return
    if kind == "list":
        if meta.get("min", 0) >= 1 and not query:  # an empty query list is not sent at all
            yield (
                f"{path} empty",
                ("SET", path, []),
                at(wire, f"have length greater than or equal to {meta['min']}"),
            )
        if "max" in meta and meta["max"] <= 200 and value:
            yield (
                f"{path} too long",
                ("SET", path, [value[0]] * (meta["max"] + 1)),
                at(wire, f"have length less than or equal to {meta['max']}"),
            )
        if value:
            yield from cases(shape.member, value[0], f"{path}.0", f"{wire}.1.member")
        return
    if kind == "string":
        if shape.enum:
            yield (
                f"{path} enum",
                ("SET", path, "NotAValue"),
                "Value 'NotAValue' "
                + at(wire, f"satisfy enum value set: [{', '.join(shape.enum)}]"),
            )
            return
        if meta.get("min", 0) >= 1 and not label:
            yield (
                f"{path} too short",
                ("SET", path, ""),
                at(wire, f"have length greater than or equal to {meta['min']}"),
            )
        if "max" in meta and meta["max"] <= 4096:
            long = "a" * (meta["max"] + 1)
            yield (
                f"{path} too long",
                ("SET", path, long),
                at(wire, f"have length less than or equal to {meta['max']}"),
            )
        if "pattern" in meta:
            bad = _pattern_breaker(meta)
            if bad is not None:
                yield (
                    f"{path} pattern {bad!r}",
                    ("SET", path, bad),
                    at(wire, f"satisfy regular expression pattern: {meta['pattern']}"),
                )
        return
    if kind in ("integer", "long"):
        if "min" in meta:
            yield (
                f"{path} below min",
                ("SET", path, meta["min"] - 1),
                f"Value '{meta['min'] - 1}' "
                + at(wire, f"have value greater than or equal to {meta['min']}"),
            )
        if "max" in meta:
            yield (
                f"{path} above max",
                ("SET", path, meta["max"] + 1),
                f"Value '{meta['max'] + 1}' "
                + at(wire, f"have value less than or equal to {meta['max']}"),
            )


def _apply(request: dict[str, Any], change: tuple[str, str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(request)
    action, path, arg = change
    parts = [p for p in path.split(".") if p]
    if action == "DELETE":
        node: Any = out
        for part in parts:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[arg]
        return out
    node = out
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = arg
    else:
        node[last] = arg
    return out


def all_cases() -> list[tuple[str, str, str, Any, str]]:
    out = []
    ops = [(CONTROL, o) for o in CONTROL_OPERATIONS] + [(RUNTIME, o) for o in runtime_operations()]
    for service, name in ops:
        op = operation(service, name)
        for what, change, expected in cases(op.input_shape, VALID[name], "", ""):
            out.append((service, name, what, change, expected))
    return out


CASES = all_cases()


@functools.cache
def _clients(url: str) -> dict[str, Any]:
    config = Config(parameter_validation=False, retries={"max_attempts": 1})
    return {
        service: boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=url,
            config=config,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for service in (CONTROL, RUNTIME)
    }


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStoreServer]:
    """One server for the constraint cases: each is refused before it changes anything."""
    root = tmp_path_factory.mktemp("validation") / "example"
    root.mkdir()
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    server = serve_in_thread(load_config(root), load(root), port=0)
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def unchecked(served: FeatureStoreServer) -> dict[str, Any]:
    return _clients(served.url)


def test_every_operation_has_a_valid_request_that_passes_validation(
    served: FeatureStoreServer, unchecked: dict[str, Any]
) -> None:
    """The base requests satisfy the model (else the cases below would test nothing): each is
    answered with something other than a validation error."""
    from fsgen.server.model import validate

    for service, names in ((CONTROL, CONTROL_OPERATIONS), (RUNTIME, runtime_operations())):
        for name in names:
            validate(operation(service, name), VALID[name], "ValidationException")


def test_the_generated_cases_cover_every_kind_of_constraint() -> None:
    kinds = {
        expected.split("constraint: ")[-1].split(" ")[2] if "constraint" in expected else ""
        for *_, expected in CASES
    }
    text = " ".join(expected for *_, expected in CASES)
    for constraint in (
        "must not be null",
        "length greater",
        "length less",
        "value greater",
        "value less",
        "regular expression",
        "enum value set",
    ):
        assert constraint in text, constraint
    assert len(CASES) > 100 and kinds


@pytest.mark.parametrize(
    ("service", "name", "what", "change", "expected"), CASES, ids=[f"{c[1]}:{c[2]}" for c in CASES]
)
def test_documented_constraint_is_enforced(
    shared_server: FeatureStoreServer,
    service: str,
    name: str,
    what: str,
    change: Any,
    expected: str,
) -> None:
    client = _clients(shared_server.url)[service]
    request = _apply(VALID[name], change)
    method = getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
    with pytest.raises(ClientError) as info:
        method(**request)
    err = info.value.response["Error"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Code"] == ("ValidationException" if service == CONTROL else "ValidationError")
    assert re.match(r"^[0-9]+ validation errors? detected: Value ", err["Message"]), err["Message"]
    assert expected in err["Message"], err["Message"]


@pytest.mark.parametrize(
    ("name", "request_", "code", "message"),
    [
        (
            "CreateFeatureGroup",
            {"FeatureDefinitions": [*DEFS, {"FeatureName": "write_time", "FeatureType": "String"}]},
            "ValidationException",
            "reserved",
        ),
        (
            "CreateFeatureGroup",
            {"RecordIdentifierFeatureName": "nope"},
            "ValidationException",
            "not in FeatureDefinitions",
        ),
        (
            "CreateFeatureGroup",
            {"FeatureDefinitions": [DEFS[0], {"FeatureName": "t", "FeatureType": "Integral"}]},
            "ValidationException",
            "String or Fractional",
        ),
        ("CreateFeatureGroup", {"RoleArn": None}, "ValidationException", "RoleArn is required"),
        (
            "CreateFeatureGroup",
            {"OnlineStoreConfig": None, "OfflineStoreConfig": None, "RoleArn": None},
            "ValidationException",
            "at least one",
        ),
        (
            "CreateFeatureGroup",
            {"FeatureDefinitions": [*DEFS, {"FeatureName": "ID", "FeatureType": "String"}]},
            "ValidationException",
            "Duplicate",
        ),
        ("CreateFeatureGroup", {"FeatureGroupName": "g"}, "ResourceInUse", "already exists"),
        (
            "UpdateFeatureGroup",
            {"FeatureAdditions": [DEFS[0]]},
            "ValidationException",
            "already exists",
        ),
        (
            "UpdateFeatureGroup",
            {"OnlineStoreConfig": {"TtlDuration": TTL}},
            "ValidationException",
            "one of FeatureAdditions, OnlineStoreConfig, ThroughputConfig at a time",
        ),
        ("DescribeFeatureGroup", {"FeatureGroupName": "missing"}, "ResourceNotFound", "not found"),
        ("DescribeFeatureMetadata", {"FeatureName": "missing"}, "ResourceNotFound", "not found"),
        ("ListFeatureGroups", {"NextToken": "x"}, "ValidationException", "pagination token"),
        (
            "Search",
            {"Resource": "TrainingJob"},
            "ValidationException",
            "FeatureGroup and FeatureMetadata",
        ),
        ("Search", {"NextToken": "zz"}, "ValidationException", "pagination token"),
        ("ListTags", {"ResourceArn": ARN + "x"}, "ResourceNotFound", "not found"),
        ("GetRecord", {"FeatureGroupName": "missing"}, "ResourceNotFound", "not found"),
        ("GetRecord", {"FeatureNames": ["nope"]}, "ValidationError", "not defined"),
        ("PutRecord", {"Record": [RECORD[0]]}, "ValidationError", "missing t"),
        ("PutRecord", {"Record": [*RECORD, RECORD[0]]}, "ValidationError", "more than once"),
        (
            "PutRecord",
            {"Record": [RECORD[0], {"FeatureName": "t", "ValueAsStringList": [T0]}]},
            "ValidationError",
            "ValueAsString",
        ),
        ("PutRecord", {"TargetStores": ["OnlineStore", "OnlineStore"]}, "ValidationError", "twice"),
        ("DeleteRecord", {"EventTime": "yesterday"}, "ValidationError", "yyyy-MM-dd"),
        ("ListRecords", {"NextToken": "zz"}, "ValidationError", "NextToken"),
        (
            "UpdateRecord",
            {"RecordIdentifierValueAsString": "absent"},
            "ResourceNotFound",
            "not found",
        ),
        (
            "UpdateRecord",
            {
                "Features": [{"FeatureName": "t", "ValueAsString": "2000-01-01T00:00:00Z"}],
                "TtlDuration": None,
            },
            "ConflictException",
            "older",
        ),
        (
            "UpdateRecord",
            {"Features": [{"FeatureName": "id", "ValueAsString": "other"}], "TtlDuration": None},
            "ValidationError",
            "record identifier",
        ),
        (
            "UpdateRecord",
            {"Features": [{"FeatureName": "id", "ValueAsString": "r"}]},
            "ValidationError",
            "TtlDuration requires",
        ),
    ],
)
def test_documented_semantic_errors(
    served: FeatureStoreServer,
    unchecked: dict[str, Any],
    name: str,
    request_: dict[str, Any],
    code: str,
    message: str,
) -> None:
    sm, rt = unchecked[CONTROL], unchecked[RUNTIME]
    sm.create_feature_group(**{**VALID["CreateFeatureGroup"], "FeatureGroupName": "g"})
    rt.put_record(FeatureGroupName="g", Record=RECORD)
    request = {k: v for k, v in {**VALID[name], **request_}.items() if v is not None}
    if name == "CreateFeatureGroup" and "OnlineStoreConfig" not in request:
        request.pop("OfflineStoreConfig", None)
    if name == "UpdateFeatureGroup" and "OnlineStoreConfig" in request_:
        request["FeatureAdditions"] = [{"FeatureName": "y", "FeatureType": "String"}]
    client = sm if name in CONTROL_OPERATIONS else rt
    method = getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
    with pytest.raises(ClientError) as info:
        method(**request)
    assert info.value.response["Error"]["Code"] == code
    assert message in info.value.response["Error"]["Message"], info.value.response["Error"][
        "Message"
    ]


def test_resource_limit_exceeded(served: FeatureStoreServer, unchecked: dict[str, Any]) -> None:
    """UpdateFeatureGroup past SageMaker's 2,500 features per group: ResourceLimitExceeded."""
    sm = unchecked[CONTROL]
    many = [*DEFS, *({"FeatureName": f"f{i}", "FeatureType": "Integral"} for i in range(2498))]
    sm.create_feature_group(**{**VALID["CreateFeatureGroup"], "FeatureDefinitions": many})
    with pytest.raises(ClientError) as info:
        sm.update_feature_group(
            FeatureGroupName="g2",
            FeatureAdditions=[{"FeatureName": "one", "FeatureType": "String"}],
        )
    assert info.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    described = sm.describe_feature_group(FeatureGroupName="g2")
    assert len(described["FeatureDefinitions"]) == 2500


def test_a_record_over_350_kb_is_refused_in_aws_words(
    served: FeatureStoreServer, unchecked: dict[str, Any]
) -> None:
    """Two values within PutRecord's per-value limit that make a record over 350 KB: a
    ValidationError whose message is SageMaker-like, not fsgen's reject field tag."""
    sm, rt = unchecked[CONTROL], unchecked[RUNTIME]
    defs = [*DEFS, *({"FeatureName": n, "FeatureType": "String"} for n in ("a", "b"))]
    create = {**VALID["CreateFeatureGroup"], "FeatureGroupName": "g", "FeatureDefinitions": defs}
    sm.create_feature_group(**create)
    big = [{"FeatureName": n, "ValueAsString": n * 200_000} for n in ("a", "b")]
    with pytest.raises(ClientError) as info:
        rt.put_record(FeatureGroupName="g", Record=[*RECORD, *big])
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("Record is 400,"), error["Message"]
    assert "<record>" not in error["Message"] and "358,400" in error["Message"]
    assert "Record" not in rt.get_record(FeatureGroupName="g", RecordIdentifierValueAsString="r")
