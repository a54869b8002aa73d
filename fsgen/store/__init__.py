"""The embedded local feature store: offline Parquet + DuckDB, online SQLite, batch ingestion.

``LocalStore`` is the Python API every local path uses (CLI, ``fsgen serve``, streaming,
point-in-time datasets): see :mod:`fsgen.store.local`.
"""

from fsgen.runtime.ingest import IngestResult
from fsgen.runtime.sources import Reject
from fsgen.store.local import DeleteResult, LocalStore

__all__ = ["DeleteResult", "IngestResult", "LocalStore", "Reject"]
