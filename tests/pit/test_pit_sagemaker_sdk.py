"""fsgen against the SageMaker Python SDK (v2) DatasetBuilder where their semantics coincide.

The SDK builds its Athena query for a DataFrame base with ``point_in_time_accurate_join()``
and ``with_number_of_recent_records_by_record_identifier(1)``; we run that query, transpiled
by sqlglot, on DuckDB over the same offline files. Where both define the answer (no TTL, no
deletes, one label row per identifier, every label row with a record at or before it) the
values are equal, event-time ties included (both keep the latest api_invocation_time, then
write_time). The differences, shown here and documented in the README: the SDK drops label
rows without a match (inner join) and keeps one label row per identifier; fsgen keeps every
label row.
"""

from __future__ import annotations

import os

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from pithelpers import Row, arrow_schema, iso, write_offline

from fsgen.pit import build_dataset
from fsgen.pit.local import data_files

T0 = 1_710_028_800 * 1_000_000
SECOND = 1_000_000


def sdk_query(spec: object, labels: pd.DataFrame) -> str:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    dataset_builder = pytest.importorskip("sagemaker.feature_store.dataset_builder")
    feature_definition = pytest.importorskip("sagemaker.feature_store.feature_definition")
    fd, kind = feature_definition.FeatureDefinition, feature_definition.FeatureTypeEnum
    group = spec.group("accounts")  # type: ignore[attr-defined]
    builder = dataset_builder.DatasetBuilder(
        None,
        labels,
        "s3://bucket/out",
        record_identifier_feature_name="acct_id",
        event_time_identifier_feature_name="ts_label",
    )
    # what with_feature_group() builds from DescribeFeatureGroup of the deployed group
    builder._feature_groups_to_be_merged.append(
        dataset_builder.FeatureGroupToBeMerged(
            [name for name, _ in group.stored_columns()],
            ["acct_id", "ts", "level"],
            ["level"],
            "AwsDataCatalog",
            "sagemaker_featurestore",
            "accounts",
            "acct_id",
            fd("ts", kind.STRING),
            "acct_id",
            dataset_builder.TableType.FEATURE_GROUP,
        )
    )
    builder.point_in_time_accurate_join().with_number_of_recent_records_by_record_identifier(1)
    builder._event_time_identifier_feature_type = kind.STRING
    base = dataset_builder.FeatureGroupToBeMerged(
        list(labels.columns),
        list(labels.columns),
        list(labels.columns),
        "AwsDataCatalog",
        "sagemaker_featurestore",
        "labels_base",
        "acct_id",
        fd("ts_label", kind.STRING),
        None,
        dataset_builder.TableType.DATA_FRAME,
    )
    query: str = builder._construct_query_string(base)
    return query


def test_sdk_point_in_time_join_agrees_where_semantics_coincide(pit_project, tmp_path) -> None:
    config, spec = pit_project
    rng = np.random.default_rng(7)
    rows = []
    for n in range(300):
        key = f"id{rng.integers(0, 60)}"
        event = T0 + int(rng.integers(0, 40)) * SECOND  # many event-time ties
        api = T0 + int(rng.integers(0, 5)) * SECOND  # api ties too: write_time decides
        rows.append(
            Row(
                values={"acct_id": key, "ts": iso(event), "level": n, "label": "l", "hist": []},
                event_us=event,
                write_us=api + n,
                api_us=api,
            )
        )
    write_offline(tmp_path, spec.group("accounts"), rows, "b0")
    keys = [f"id{i}" for i in range(70)]  # id60..id69 have no records at all
    times = [T0 + int(rng.integers(40, 1500)) * SECOND for _ in keys]  # within the 1h TTL
    labels = pd.DataFrame({"acct_id": keys, "ts_label": [iso(t) for t in times]})
    early = pd.DataFrame({"acct_id": ["id0"], "ts_label": [iso(T0 - SECOND)]})

    query = sdk_query(spec, labels)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA sagemaker_featurestore")
    files = [p.as_posix() for p in data_files(tmp_path / "offline" / "accounts")]
    assert files and arrow_schema(spec.group("accounts"))
    con.execute(
        f"CREATE VIEW sagemaker_featurestore.accounts AS SELECT * FROM read_parquet({files!r})"
    )
    con.register("labels_frame", labels)
    con.execute("CREATE TABLE sagemaker_featurestore.labels_base AS SELECT * FROM labels_frame")
    sdk = con.sql(sqlglot.transpile(query, read="athena", write="duckdb")[0]).df()

    ours = build_dataset(config, spec, "pit-strict", labels.iloc[:60], store=tmp_path)
    theirs = sdk.set_index("acct_id")["age.1" if "age.1" in sdk else "level.1"]
    assert len(theirs) == 60  # the SDK drops the 10 label rows without a record
    assert {k: int(v) for k, v in zip(ours["acct_id"], ours["level"], strict=True)} == {
        k: int(v) for k, v in theirs.items()
    }

    # fsgen keeps every label row (missing values per policy); the SDK keeps one per id
    kept = build_dataset(
        config,
        spec,
        "pit-set",
        pd.concat([labels, early]).assign(p=1, q="x", lu="u", lv="v", amount=1.0, target=0),
        store=tmp_path,
    )
    assert len(kept) == 71 and kept["level"].isna().sum() == 11
