"""Per-shard checkpoints of a stream consumer, kept under the store directory:
``<store>/stream/checkpoints/<stream>/<group>.json`` = ``{"shards": {shard id: sequence
number}}``, the last record of each shard that was durably handled (written or
dead-lettered). A restarted consumer reads each shard AFTER_SEQUENCE_NUMBER its checkpoint.

Writes are atomic (temp file, fsync, rename), so a kill leaves the old or the new checkpoint,
never a torn one; the consumer writes one only after the batch it covers is handled, so a kill
can only repeat records (harmless: the handler is idempotent), never skip one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class Checkpoints:
    def __init__(self, store_path: Path, stream: str, group: str) -> None:
        safe = stream.replace("/", "_")
        self.path = Path(store_path) / "stream" / "checkpoints" / safe / f"{group}.json"
        self.stream = stream
        self.group = group
        self.shards: dict[str, str] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.shards = {str(k): str(v) for k, v in data.get("shards", {}).items()}

    def get(self, shard: str) -> str | None:
        return self.shards.get(shard)

    def save(self, shard: str, sequence_number: str) -> None:
        self.save_all({shard: sequence_number})

    def save_all(self, marks: dict[str, str]) -> None:
        """Move the checkpoints of several shards in one atomic write."""
        self.shards.update(marks)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = (
            json.dumps(
                {
                    "stream": self.stream,
                    "group": self.group,
                    "shards": dict(sorted(self.shards.items())),
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
