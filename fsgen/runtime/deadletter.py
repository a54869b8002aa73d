"""Dead-letter destinations for poison stream records: a JSON-lines file (local runs), an SQS
queue or an S3 prefix (AWS). Each entry is one JSON object (see
:func:`fsgen.runtime.kinesis.dead_letter_entry`): the reason, the field, the sequence number,
the partition key and the raw payload exactly as it arrived (base64).

They live in the runtime, not in ``fsgen.stream``, because a deployed Lambda needs them and
ships only :mod:`fsgen.runtime`. Standard library only; boto3 is imported when an AWS
destination is first used (it is in every Lambda runtime). ``send`` stores every entry or
raises, and re-sending the same entries adds no visible duplicate where the destination can
tell (file: same shard, sequence number and payload; S3: same object key).

The file destination is safe for concurrent writers (two ``stream replay`` or ``consume``
processes dead-lettering into one file): each ``send`` holds an exclusive ``flock`` on the
file while it reads what others appended since, de-duplicates and appends. The
de-duplication key includes the raw payload and the reason, so two distinct records that
share a sequence number (two replayed files, both numbered from their line 1) are both kept.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

Entry = dict[str, object]


Key = tuple[str, str, str, str, str]


def _key(entry: Entry) -> Key:
    """What makes an entry the same record: where it was in the stream *and* what it was."""
    return (
        str(entry.get("group")),
        str(entry.get("shardId")),
        str(entry.get("sequenceNumber")),
        str(entry.get("data")),
        str(entry.get("reason")),
    )


class JsonlDeadLetter:
    """Appends entries to a JSON-lines file, fsync'ed before ``send`` returns.

    An entry already in the file (same group, shard, sequence number, payload and reason, as
    when a batch is re-run after a crash) is not appended again. Writers in other processes
    are serialized by an exclusive ``flock`` on the file; what they appended is read before
    de-duplicating, so no line of theirs or ours is lost."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._seen: set[Key] = set()
        self._read_to = 0  # bytes of the file already read into _seen

    def _catch_up(self, fh: IO[bytes]) -> None:
        """Read the complete lines appended since the last send (by anyone) into _seen."""
        if fh.seek(0, os.SEEK_END) < self._read_to:  # replaced or truncated: read it anew
            self._seen, self._read_to = set(), 0
        fh.seek(self._read_to)
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # a torn last line (a crash mid-write): not an entry
            self._read_to += len(raw)
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                self._seen.add(_key(value))

    def send(self, entries: list[Entry]) -> None:
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                self._catch_up(fh)
                fresh = []
                for entry in entries:
                    key = _key(entry)
                    if key not in self._seen:
                        self._seen.add(key)
                        fresh.append(entry)
                if not fresh:
                    return
                text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in fresh)
                size = fh.seek(0, os.SEEK_END)
                if size and _ends_torn(self.path):  # a crash mid-line: start a line of our own
                    text = "\n" + text
                data = text.encode("utf-8", "backslashreplace")
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
                self._read_to = size + len(data)
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def __repr__(self) -> str:
        return f"JsonlDeadLetter({str(self.path)!r})"


def _ends_torn(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Entry]:
    """Entries of a JSON-lines dead-letter file; a torn last line (a crash mid-write) is
    skipped."""
    target = Path(path)
    if not target.exists():
        return
    with target.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                yield value


class SqsDeadLetter:
    """One SQS message per entry (SendMessageBatch, ten at a time); any failed entry raises."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        return self._client

    def send(self, entries: list[Entry]) -> None:
        for start in range(0, len(entries), 10):
            part = entries[start : start + 10]
            response = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": json.dumps(e, sort_keys=True),
                        "MessageAttributes": {
                            "group": {"DataType": "String", "StringValue": str(e.get("group"))}
                        },
                    }
                    for i, e in enumerate(part)
                ],
            )
            failed = response.get("Failed") or []
            if failed:
                first = failed[0]
                raise RuntimeError(
                    f"SQS rejected {len(failed)} dead-letter message(s): "
                    f"{first.get('Code')}: {first.get('Message')}"
                )

    def __repr__(self) -> str:
        return f"SqsDeadLetter({self.queue_url!r})"


class S3DeadLetter:
    """One JSON-lines object per batch under ``s3://bucket/prefix/<group>/``, named after the
    batch's first sequence number and a hash of its entries, so a re-run overwrites it."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def send(self, entries: list[Entry]) -> None:
        if not entries:
            return
        body = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode()
        first = entries[0]
        digest = hashlib.sha256(body).hexdigest()[:16]
        name = f"{first.get('shardId') or 'shard'}-{first.get('sequenceNumber')}-{digest}.jsonl"
        key = "/".join(p for p in (self.prefix, str(first.get("group")), name) if p)
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson"
        )

    def __repr__(self) -> str:
        return f"S3DeadLetter({self.bucket!r}, {self.prefix!r})"


def from_url(url: str, client: Any = None) -> JsonlDeadLetter | SqsDeadLetter | S3DeadLetter:
    """``s3://bucket/prefix`` -> S3, an ``http(s)://`` SQS queue URL -> SQS, anything else
    (a path, or ``file://path``) -> a JSON-lines file."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URI")
        return S3DeadLetter(bucket, prefix, client)
    if url.startswith(("https://", "http://")):
        return SqsDeadLetter(url, client)
    return JsonlDeadLetter(url.removeprefix("file://"))


ENV_VAR = "FSGEN_DEAD_LETTER"


def from_environment() -> JsonlDeadLetter | SqsDeadLetter | S3DeadLetter | None:
    """The destination named by ``FSGEN_DEAD_LETTER`` (how a deployed Lambda is configured),
    or None when it is not set."""
    url = os.environ.get(ENV_VAR, "").strip()
    return from_url(url) if url else None


__all__ = [
    "ENV_VAR",
    "JsonlDeadLetter",
    "S3DeadLetter",
    "SqsDeadLetter",
    "from_environment",
    "from_url",
    "read_jsonl",
]
