"""Unit tests of the view-model decisions: names, TTL units, defaults, typed dicts, requests."""

from __future__ import annotations

import ast

import pytest
from codegen_helpers import GOLDEN, REPO, load_project

from fsgen.codegen import views
from fsgen.codegen.pyfmt import literal, string
from fsgen.sagemaker import LOCAL_ROLE_ARN, create_feature_group_request, ttl_duration


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (604800, {"Unit": "Weeks", "Value": 1}),
        (2592000, {"Unit": "Days", "Value": 30}),
        (21600, {"Unit": "Hours", "Value": 6}),
        (90, {"Unit": "Seconds", "Value": 90}),
        (120, {"Unit": "Minutes", "Value": 2}),
    ],
)
def test_ttl_duration_uses_the_largest_exact_unit(
    seconds: int, expected: dict[str, object]
) -> None:
    assert ttl_duration(seconds) == expected


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("customer-features", "customer_features"),
        ("Driver-City", "driver_city"),
        ("7day-stats", "_7day_stats"),
    ],
)
def test_snake_names_are_importable(name: str, package: str) -> None:
    assert views.snake(name) == package and package.isidentifier()


def test_typed_dict_falls_back_to_functional_syntax_for_keywords() -> None:
    text = views.typed_dict("Features", [("class", "int | None"), ("ok", "str")], "Doc.")
    assert text.startswith("Features = TypedDict(")
    tree = ast.parse(text)
    call = tree.body[0].value  # type: ignore[attr-defined]
    assert [k.value for k in call.args[1].keys] == ["class", "ok"]
    assert views.typed_dict("F", [("a", "int")], "Doc.").startswith("class F(TypedDict):")


def test_defaults_take_the_column_type() -> None:
    from fsgen.types import Fractional, Integral, String

    assert views._typed_default(Fractional, 0) == 0.0 and isinstance(
        views._typed_default(Fractional, 0), float
    )
    assert views._typed_default(Integral, 3.0) == 3 and isinstance(
        views._typed_default(Integral, 3.0), int
    )
    assert views._typed_default(String, "x") == "x"
    assert views._typed_default(Fractional, None) is None


def test_parser_types_follow_the_missing_policy() -> None:
    _, spec = load_project(GOLDEN / "shop")
    shop = views.feature_set_view(spec, spec.feature_sets[0])
    assert "    rating: float | None\n" in shop.typed_dict + "\n"  # missing="null"
    _, spec = load_project(GOLDEN / "rides")
    rides = views.feature_set_view(spec, spec.feature_sets[0])
    assert "    route_embedding: list[float]\n" in rides.typed_dict + "\n"  # missing="error"
    _, spec = load_project(REPO)
    fraud = views.feature_set_view(spec, spec.feature_sets[0])
    assert "    age: int\n" in fraud.typed_dict + "\n"  # missing="default" with a default


def test_request_uses_group_then_profile_storage_settings() -> None:
    config, spec = load_project(GOLDEN / "rides")
    group = spec.group("rider-profile")
    request = create_feature_group_request(group, config)
    assert request["OfflineStoreConfig"] == {
        # no S3 URI configured: the local placeholder under the project's identity
        "S3StorageConfig": {"S3Uri": "s3://fsgen-local/rides-golden"},
        "DisableGlueTableCreation": False,
        "TableFormat": "Glue",
    }
    assert request["RoleArn"] == LOCAL_ROLE_ARN  # no aws profile role: the local placeholder
    assert request["OnlineStoreConfig"] == {"EnableOnlineStore": True, "StorageType": "Standard"}
    config, spec = load_project(REPO)
    request = create_feature_group_request(spec.group("customer-features"), config)
    assert request["RoleArn"] == config.aws.role_arn
    assert request["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == config.aws.offline_s3_uri


@pytest.mark.parametrize("text", ["plain", "it's", 'say "hi"', "a\\b", "tab\t", "é"])
def test_string_literals_evaluate_back(text: str) -> None:
    assert ast.literal_eval(string(text)) == text
    assert ast.literal_eval(literal((text, [text], {text: None}))) == (text, [text], {text: None})
