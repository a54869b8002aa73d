"""fsgen's SageMaker limits are the ones in botocore's service model."""

from __future__ import annotations

import re

import botocore.session

from fsgen import validate as v


def shape(operation: str) -> object:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model(operation).input_shape


def test_create_feature_group_limits() -> None:
    inp = shape("CreateFeatureGroup")
    members = inp.members  # type: ignore[attr-defined]
    assert members["FeatureDefinitions"].metadata["max"] == v.MAX_FEATURES
    assert members["Description"].metadata["max"] == v.MAX_GROUP_DESCRIPTION
    assert members["Tags"].metadata["max"] == v.MAX_TAGS
    tag = members["Tags"].member.members
    assert tag["Key"].metadata["max"] == v.MAX_TAG_KEY
    assert tag["Value"].metadata["max"] == v.MAX_TAG_VALUE
    assert f"^{members['FeatureGroupName'].metadata['pattern']}$" == v.GROUP_NAME.pattern
    feature_name = members["FeatureDefinitions"].member.members["FeatureName"].metadata
    assert f"^{feature_name['pattern']}$" == v.FEATURE_NAME.pattern
    throughput = members["ThroughputConfig"].members
    assert throughput["ProvisionedReadCapacityUnits"].metadata["max"] == v.MAX_PROVISIONED_UNITS


def test_feature_metadata_limits() -> None:
    members = shape("UpdateFeatureMetadata").members  # type: ignore[attr-defined]
    assert members["Description"].metadata["max"] == v.MAX_FEATURE_DESCRIPTION
    assert members["ParameterAdditions"].metadata["max"] == v.MAX_FEATURE_PARAMS
    param = members["ParameterAdditions"].member.members
    assert param["Key"].metadata["max"] == v.MAX_PARAM_TEXT
    assert re.compile(v.PARAM_TEXT.pattern).match("team:risk-ml/v1")
