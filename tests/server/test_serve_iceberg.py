"""``fsgen serve``: a group created with ``TableFormat: Iceberg`` gets its local Iceberg table at
CreateFeatureGroup, its PutRecord calls append to that table (a feature added later widens its
schema), and DeleteFeatureGroup takes it out of the catalog."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
from serverlib import Example, clients
from test_serve_operations import ROLE, create, iso, record

from fsgen.server import FeatureStoreServer
from fsgen.store import iceberg

OFFLINE = {
    "S3StorageConfig": {"S3Uri": "s3://any-bucket/prefix"},
    "TableFormat": "Iceberg",
}


def test_an_iceberg_group_created_through_the_api(
    served: FeatureStoreServer, example: Example
) -> None:
    store = example[0].store_path
    sm, rt = clients(served.url)
    create(sm, "ice", OfflineStoreConfig=OFFLINE, RoleArn=ROLE)
    table = iceberg.catalog(store, "ice").load_table(("fsgen", "ice"))
    assert table.current_snapshot() is None  # created empty, with the group
    assert [f.name for f in table.schema().fields][-3:] == [
        "write_time",
        "api_invocation_time",
        "is_deleted",
    ]
    t0 = iso(time.time())
    rt.put_record(FeatureGroupName="ice", Record=record("a", t0))
    sm.update_feature_group(
        FeatureGroupName="ice",
        FeatureAdditions=[{"FeatureName": "late", "FeatureType": "String"}],
    )
    rt.put_record(FeatureGroupName="ice", Record=record("b", t0, late="v"))
    files = iceberg.data_file_names(store, "ice")
    assert files and all(f"/data/t_trunc={t0[:10]}/" in f for f in files)
    assert not list((store / "offline" / "ice").glob("data/year=*"))
    rows = duckdb.sql(
        "SELECT id, late FROM read_parquet([" + ", ".join(f"'{f}'" for f in files) + "], "
        "union_by_name = true) ORDER BY id"
    ).fetchall()
    assert rows == [("a", None), ("b", "v")]
    sm.delete_feature_group(FeatureGroupName="ice")
    assert iceberg.data_file_names(store, "ice") == []
    assert list(Path(store / "archive" / "ice").glob("*/metadata/*.metadata.json"))
