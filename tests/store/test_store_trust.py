"""No silent wrong answers (issue 13), through the command line a user runs: writes to groups
that are not deployed, composite keys by name, collections in CSV, configuration failures,
deletes in the audit trail, ``get --feature`` / ``--as-of``, empty groups in datasets and what
a TTL change does to stored records."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main

DEFS = '''
"""A music recommender: composite key, a collection raw field, a pseudonymized id."""

from fsgen import Entity, FeatureGroup, FeatureSet, Integral, Online, String
from fsgen.pii import pseudonymize

listener = Entity(keys={"listener_id": String, "artist_id": Integral}, name="listener_artist",
                  description="A listener's relation to an artist")
person = Entity("person_id", String, description="A listener")

listens = FeatureGroup(
    "listens", entity=listener, event_time="ts", online=Online(ttl="7d"),
    owner="music", description="Plays per listener and artist",
)


@listens.feature(Integral, description="Tracks played")
def n_tracks(track_ids: list[int]) -> int:
    return len(track_ids)


@listens.feature(Integral, description="Highest track id")
def top_track(track_ids: list[int]) -> int:
    return max(track_ids) if track_ids else 0


profiles = FeatureGroup(
    "profiles", entity=person, event_time="ts", online=Online(ttl="7d"),
    owner="music", description="Listener profiles",
)


@profiles.feature(String, description="Pseudonymized listener id")
def token(person_id: str) -> str:
    return str(pseudonymize(person_id))


@profiles.feature(Integral, description="Age")
def age(years: int) -> int:
    return years


recommend = FeatureSet(
    "recommend", [n_tracks, top_track], label_time="label_time", labels=["liked"],
    missing="default", defaults={n_tracks: -1, top_track: -1},
)
'''

LISTENS = (
    "listener_id,artist_id,ts,track_ids\n"
    'L902,77,2024-01-01T00:00:00Z,"[9, 20, 22]"\n'
    "L902,78,2024-01-02T00:00:00Z,[]\n"
    'L903,77,2024-01-03T00:00:00Z,"[""5"", 6]"\n'
)
KEY = "fsgen-test-pseudonymization-key"
L902_77 = ["--key", "listener_id=L902", "--key", "artist_id=77"]


def make_music(root: Path) -> Path:
    (root / "musicdefs").mkdir(parents=True)
    (root / "musicdefs" / "__init__.py").write_text('"""Music definitions."""\n')
    (root / "musicdefs" / "groups.py").write_text(textwrap.dedent(DEFS))
    (root / "pyproject.toml").write_text(
        '[project]\nname = "music"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "musicdefs"\n'
    )
    (root / "listens.csv").write_text(LISTENS)
    return root


def run(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main,
        ["--project", str(root), *args],
        env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
    )
    return result.exit_code, result.stdout, result.stderr


def apply(root: Path) -> None:
    code, _, err = run(root, "apply", "--auto-approve", "--allow-replace")
    assert code == 0, err


@pytest.fixture
def music(tmp_path: Path) -> Path:
    return make_music(tmp_path / "music")


@pytest.fixture
def deployed(music: Path) -> Path:
    apply(music)
    return music


# -------------------------------------------------------------- 2: groups not deployed


def test_records_are_refused_before_the_first_apply(music: Path) -> None:
    code, _, err = run(music, "ingest", "listens", str(music / "listens.csv"))
    assert code == 1
    assert "ResourceNotFound" in err and "'listens' is not deployed" in err
    assert "fsgen apply" in err
    code, _, err = run(music, "get", "listens", *L902_77)
    assert code == 1 and "ResourceNotFound" in err and "fsgen apply" in err
    assert not (music / ".fsgen" / "offline" / "listens").exists()


def test_records_are_refused_after_destroy_by_every_writer(deployed: Path) -> None:
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    code, _, err = run(deployed, "destroy", "--auto-approve")
    assert code == 0, err
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 1 and "not deployed" in err and "fsgen apply" in err
    code, _, err = run(deployed, "get", "listens", *L902_77)
    assert code == 1 and "not deployed" in err
    code, _, err = run(
        deployed, "delete-record", "listens", *L902_77, "--event-time", "2024-02-01T00:00:00Z"
    )
    assert code == 1 and "not deployed" in err
    # the stream handler's replay writes through the same data plane
    events = deployed / "events.jsonl"
    events.write_text(json.dumps({"person_id": "P1", "ts": "2024-01-01T00:00:00Z", "years": 30}))
    code, _, err = run(deployed, "stream", "replay", "profiles", str(events))
    assert code == 1 and "not deployed" in err
    # and so does the generated batch job
    code, _, err = run(deployed, "generate")
    assert code == 0, err
    job = subprocess.run(
        [
            sys.executable,
            "-m",
            "generated.groups.listens.batch_job",
            str(deployed / "listens.csv"),
            "--project",
            str(deployed),
        ],
        cwd=deployed,
        capture_output=True,
        text=True,
        check=False,
    )
    assert job.returncode == 1, job.stderr
    assert "not deployed" in job.stderr and "fsgen apply" in job.stderr
    assert not (deployed / ".fsgen" / "offline" / "listens").exists()


def test_a_feature_declared_but_not_applied_is_refused_by_every_writer(deployed: Path) -> None:
    """SageMaker's PutRecord refuses a feature its group was not created with; so does the
    local store, before writing anything, until `fsgen apply` adds it."""
    defs = deployed / "musicdefs" / "groups.py"
    defs.write_text(
        defs.read_text()
        + textwrap.dedent(
            """

            @profiles.feature(Integral, description="Age in months")
            def age_months(years: int) -> int:
                return 12 * years
            """
        )
    )
    events = deployed / "events.jsonl"
    events.write_text(json.dumps({"person_id": "P1", "ts": "2024-01-01T00:00:00Z", "years": 30}))
    refusal = (
        "the definitions of feature group 'profiles' differ from the deployed group "
        "(not deployed: age_months (Integral)): nothing was written; run `fsgen plan` and "
        "`fsgen apply` first"
    )
    env = {"FSGEN_PSEUDONYMIZATION_KEY": KEY}
    for args in (
        ("ingest", "profiles", str(events)),
        ("stream", "replay", "profiles", str(events)),
    ):
        code, _, err = run(deployed, *args, env=env)
        assert code == 1 and refusal in " ".join(err.split()), err
    code, _, err = run(deployed, "generate")  # the generated batch job, regenerated: the same
    assert code == 0, err
    job = subprocess.run(
        [sys.executable, "-m", "generated.groups.profiles.batch_job", str(events)],
        cwd=deployed,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "FSGEN_PSEUDONYMIZATION_KEY": KEY},
    )
    assert job.returncode == 1 and refusal in " ".join(job.stderr.split()), job.stderr
    assert not (deployed / ".fsgen" / "offline" / "profiles").exists()
    apply(deployed)
    code, _, err = run(deployed, "ingest", "profiles", str(events), env=env)
    assert code == 0, err
    code, out, err = run(
        deployed, "get", "profiles", "P1", "--json", "--as-of", "2024-01-02T00:00:00Z", env=env
    )
    assert code == 0 and json.loads(out)["age_months"] == 360, err
    # a type changed in featuredefs and not applied (a replace): refused the same way
    defs.write_text(
        defs.read_text()
        .replace("def age(years: int) -> int:", "def age(years: int) -> str:")
        .replace(
            '@profiles.feature(Integral, description="Age")',
            '@profiles.feature(String, description="Age")',
        )
        .replace("    return years\n", "    return str(years)\n")
    )
    code, _, err = run(deployed, "ingest", "profiles", str(events), env=env)
    assert code == 1, err
    assert "(deployed with another type: age (Integral deployed, String declared))" in " ".join(
        err.split()
    )


# ------------------------------------------------------- 7: composite keys on the command line


def test_composite_keys_by_name(deployed: Path) -> None:
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    code, out, err = run(
        deployed,
        "get",
        "listens",
        "--key",
        "artist_id=77",
        "--key",
        "listener_id=L902",
        "--json",
        "--as-of",
        "2024-01-05T00:00:00Z",
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["listener_id"] == "L902" and record["artist_id"] == 77
    assert record["n_tracks"] == 3 and record["top_track"] == 22
    code, _, err = run(deployed, "get", "listens", "--key", "listener_id=L902")
    assert code == 1 and "missing key part artist_id" in err
    code, _, err = run(deployed, "get", "listens", *L902_77, "--key", "track=1")
    assert code == 1 and "no key part 'track'" in err and "listener_id, artist_id" in err
    code, _, err = run(deployed, "get", "listens", "L902,77")
    assert code == 1 and "--key listener_id=VALUE --key artist_id=VALUE" in err
    code, _, err = run(
        deployed, "delete-record", "listens", *L902_77, "--event-time", "2024-01-04T00:00:00Z"
    )
    assert code == 0, err
    code, _, _ = run(deployed, "get", "listens", *L902_77, "--as-of", "2024-01-05T00:00:00Z")
    assert code == 1


# ------------------------------------------------------------------ 8: collections in CSV


def test_collections_in_csv_cells_are_json_arrays(deployed: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(LISTENS + "L904,1,2024-01-04T00:00:00Z,9|20\n")
    code, out, err = run(deployed, "ingest", "listens", str(bad), "--json")
    assert code == 1
    summary = json.loads(out)
    assert (summary["read"], summary["written"], summary["rejected"]) == (4, 3, 1)
    assert "JSON array" in err and "'9|20'" in err
    code, out, err = run(
        deployed, "get", "listens", "--key", "listener_id=L903", "--key", "artist_id=77",
        "--json", "--as-of", "2024-01-05T00:00:00Z",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["top_track"] == 6  # '["5", 6]': elements coerced like scalars


# ------------------------------------------------------------- 6: configuration failures


def test_missing_pseudonymization_key_fails_the_batch_run(
    deployed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSGEN_PSEUDONYMIZATION_KEY", raising=False)
    monkeypatch.delenv("FSGEN_PSEUDONYMIZATION_SECRET_ID", raising=False)
    source = tmp_path / "profiles.csv"
    source.write_text(
        "person_id,ts,years\nP1,2024-01-01T00:00:00Z,30\nP2,2024-01-01T00:00:00Z,40\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    code, _, err = run(deployed, "ingest", "profiles", str(source), "--rejects", str(rejects))
    assert code == 1
    assert "configuration error" in err and "FSGEN_PSEUDONYMIZATION_KEY" in err
    assert not rejects.exists()  # no row is blamed
    assert not (deployed / ".fsgen" / "offline" / "profiles" / "data").exists()
    code, _, err = run(deployed, "ingest", "profiles", str(source), env={
        "FSGEN_PSEUDONYMIZATION_KEY": KEY})  # fmt: skip
    assert code == 0, err


def test_missing_pseudonymization_key_retries_the_stream_batch(
    deployed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSGEN_PSEUDONYMIZATION_KEY", raising=False)
    monkeypatch.delenv("FSGEN_PSEUDONYMIZATION_SECRET_ID", raising=False)
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps({"person_id": f"P{i}", "ts": "2024-01-01T00:00:00Z", "years": 30 + i}) + "\n"
            for i in range(5)
        )
    )
    dead = tmp_path / "dead.jsonl"
    code, out, err = run(
        deployed, "stream", "replay", "profiles", str(events), "--dead-letter", str(dead), "--json"
    )
    assert code == 1
    counts = json.loads(out)
    assert counts["written"] == 0 and counts["dead_lettered"] == 0 and counts["failed"] == 5
    assert "configuration error" in err
    assert not dead.exists() or dead.read_text() == ""


def test_stream_handler_reports_every_record_in_batch_item_failures(
    deployed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsgen.bind import group_runtime
    from fsgen.loader import load
    from fsgen.runtime.kinesis import process_event
    from fsgen.runtime.sinks import RecordSink

    monkeypatch.delenv("FSGEN_PSEUDONYMIZATION_KEY", raising=False)
    monkeypatch.setenv("FSGEN_PSEUDONYMIZATION_SECRET_ID", "no-such-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")  # refused
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    from fsgen.runtime import pii

    pii.clear_key_cache()
    runtime = group_runtime(load(deployed).group("profiles"))
    records = [
        {
            "kinesis": {
                "sequenceNumber": f"4959{i}",
                "partitionKey": f"P{i}",
                "data": base64.b64encode(
                    json.dumps(
                        {"person_id": f"P{i}", "ts": "2024-01-01T00:00:00Z", "years": i}
                    ).encode()
                ).decode(),
            }
        }
        for i in range(3)
    ]
    dead: list[dict[str, object]] = []

    class Collect:
        def send(self, entries: list[dict[str, object]]) -> None:
            dead.extend(entries)

    written: list[object] = []

    class Keep(RecordSink):
        def put_records(self, group: str, records: list[dict[str, object]]) -> object:
            written.extend(records)
            return None

    result = process_event(runtime, {"Records": records}, Keep(), Collect())
    assert result.response() == {
        "batchItemFailures": [{"itemIdentifier": f"4959{i}"} for i in range(3)]
    }
    assert dead == [] and written == [] and result.written == 0
    assert "Secrets Manager" in result.failures[0].message


# --------------------------------------------------- 9: deletes audited, get's errors, as-of


def test_delete_is_audited_and_a_missing_id_is_an_error(deployed: Path) -> None:
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    code, out, err = run(
        deployed, "delete-record", "listens", *L902_77, "--event-time", "2024-01-04T00:00:00Z"
    )
    assert code == 0 and "deleted online" in out
    code, out, err = run(
        deployed,
        "delete-record",
        "listens",
        "--key",
        "listener_id=NOPE",
        "--key",
        "artist_id=1",
        "--event-time",
        "2024-01-04T00:00:00Z",
    )
    assert code == 1 and "no online record" in err and "nothing written" in err
    assert "deleted" not in out
    code, out, err = run(
        deployed, "delete-record", "listens", "--key", "listener_id=NOPE", "--key",
        "artist_id=1", "--event-time", "2024-01-04T00:00:00Z", "--force",
    )  # fmt: skip
    assert code == 0 and "tombstone written offline" in out, err
    code, out, err = run(deployed, "history", "--kind", "delete", "--json")
    assert code == 0, err
    entries = [json.loads(line) for line in out.splitlines()]
    assert len(entries) == 2 and entries[1]["details"]["record_id"] == "4:NOPE;1:1;"
    assert entries[0]["groups"] == ["listens"] and entries[0]["kind"] == "delete"
    assert entries[0]["details"]["record_id"] == "4:L902;2:77;"
    assert entries[0]["details"]["mode"] == "SoftDelete"
    code, out, _ = run(deployed, "history", "--kind", "delete")
    assert "delete listens: SoftDelete 4:L902;2:77; at 2024-01-04T00:00:00Z" in out


def test_get_unknown_feature_and_as_of_before_the_event_time(deployed: Path) -> None:
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    code, out, err = run(deployed, "get", "listens", *L902_77, "--feature", "nope")
    assert code == 1 and out == ""
    assert "no feature 'nope'" in err and "n_tracks" in err and "top_track" in err
    at = ["--as-of", "2024-01-01T12:00:00Z"]
    code, out, err = run(deployed, "get", "listens", *L902_77, "--feature", "n_tracks", *at)
    assert code == 0 and out.split() == ["n_tracks", "3"], err
    code, out, err = run(deployed, "get", "listens", *L902_77, "--as-of", "2023-12-31T00:00:00Z")
    assert code == 1 and out == ""
    assert "after --as-of" in err


# --------------------------------------------------------- 4: empty groups in datasets


def test_dataset_warns_about_a_group_with_no_stored_value(deployed: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("listener_id,artist_id,label_time,liked\nL902,77,2024-01-05T00:00:00Z,1\n")
    out_path = tmp_path / "train.csv"
    args = ("dataset", "recommend", "--labels", str(labels), "--output", str(out_path), "--json")
    code, out, err = run(deployed, *args)
    assert code == 0, err
    assert "warning: feature group 'listens' has no stored value" in err
    assert "nothing has been ingested" in err and "fsgen ingest listens" in err
    (warning,) = json.loads(out)["warnings"]
    assert warning["group"] == "listens" and "ingest" in warning["hint"]
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    code, out, err = run(deployed, *args)
    assert code == 0 and json.loads(out)["warnings"] == [] and "warning" not in err
    code, out, err = run(deployed, *args, "--knowledge-time")
    assert code == 0
    (warning,) = json.loads(out)["warnings"]
    assert "--knowledge-time" in warning["reason"]


def test_dataset_on_the_aws_backend_says_the_local_engine_reads_the_local_store(
    deployed: Path, tmp_path: Path
) -> None:
    """With --backend aws, ingestion writes SageMaker, never the local store: an empty local
    store is no "nothing has been ingested", and `fsgen ingest` is no fix for it."""
    labels = tmp_path / "labels.csv"
    labels.write_text("listener_id,artist_id,label_time,liked\nL902,77,2024-01-05T00:00:00Z,1\n")
    out_path = tmp_path / "train.csv"
    args = ("dataset", "recommend", "--labels", str(labels), "--output", str(out_path), "--json")
    for backend in (("--backend", "aws"), ()):
        env = {} if backend else {"FSGEN_BACKEND": "aws"}
        code, out, err = run(deployed, *backend, *args, env=env)
        assert code == 0, err
        (warning,) = json.loads(out)["warnings"]
        assert "nothing has been ingested" not in warning["reason"]
        assert "aws backend" in warning["reason"] and "local store" in warning["reason"]
        assert "--engine athena" in warning["hint"] and "fsgen ingest" not in warning["hint"]


def test_dataset_warns_after_a_replace(deployed: Path, tmp_path: Path) -> None:
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    defs = deployed / "musicdefs" / "groups.py"
    text = defs.read_text()
    # removing a feature forces a replace of the group
    removed = text.split('@listens.feature(Integral, description="Highest track id")')
    text = removed[0] + removed[1].split("return max(track_ids) if track_ids else 0\n", 1)[1]
    text = text.replace("[n_tracks, top_track]", "[n_tracks]").replace(", top_track: -1", "")
    defs.write_text(text)
    code, out, err = run(deployed, "plan")
    assert code == 0, err
    assert "must be replaced" in out
    assert "training sets get no values from it until it is ingested again" in out
    apply(deployed)
    labels = tmp_path / "labels.csv"
    labels.write_text("listener_id,artist_id,label_time,liked\nL902,77,2024-01-05T00:00:00Z,1\n")
    output = tmp_path / "t.csv"
    code, out, err = run(
        deployed, "dataset", "recommend", "--labels", str(labels), "--output", str(output), "--json"
    )
    assert code == 0, err
    (warning,) = json.loads(out)["warnings"]
    assert warning["group"] == "listens" and "replaced or destroyed" in warning["reason"]
    assert "replaced or destroyed" in err


# ------------------------------------------------------------------ 3: a TTL change


def test_ttl_change_plan_and_serving_agree_on_stored_expiry(deployed: Path) -> None:
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    defs = deployed / "musicdefs" / "groups.py"
    defs.write_text(defs.read_text().replace('"listens", entity=listener, event_time="ts", '
                                             'online=Online(ttl="7d")',
                                             '"listens", entity=listener, event_time="ts", '
                                             'online=Online(ttl="3d")'))  # fmt: skip
    code, out, err = run(deployed, "plan")
    assert code == 0, err
    assert 'online_ttl_seconds = "7d" -> "3d"' in out
    assert "keep the ExpiresAt they were written with (EventTime + 7d)" in out
    apply(deployed)
    # written 2024-01-01 under 7d: still served on 2024-01-06 (as SageMaker keeps ExpiresAt)
    at = ["--as-of", "2024-01-06T00:00:00Z"]
    code, out, err = run(deployed, "get", "listens", *L902_77, "--json", *at)
    assert code == 0, err
    # serve-model, the endpoint handler and skew-check read through this source: it sends the
    # stored ExpiresAt (EventTime + 7d), not one recomputed from the new 3d TTL
    from datetime import UTC, datetime

    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.serving.sources import LocalRecordSource
    from fsgen.store import LocalStore

    written = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    with LocalStore.open(load_config(deployed), load(deployed)) as store:
        source = LocalRecordSource(store, lambda: written + 5 * 86400)
        response = source.batch_get_record(
            Identifiers=[
                {"FeatureGroupName": "listens", "RecordIdentifiersValueAsString": ["4:L902;2:77;"]}
            ],
            ExpirationTimeResponse="Enabled",
        )
    (served,) = response["Records"]
    assert served["ExpiresAt"] == written + 7 * 86400
    # and its expiry names that TTL, not the group's 3d of now
    code, _, err = run(deployed, "get", "listens", *L902_77, "--as-of", "2024-01-09T00:00:00Z")
    assert code == 1
    assert "+ the group's TTL of 7d when it was written" in err, err
    # a re-ingest re-stamps the stored records with the new TTL
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    code, _, _ = run(deployed, "get", "listens", *L902_77, *at)
    assert code == 1


MOODS_DEFS = """

listener_only = Entity("listener_id", String, description="A listener by id")
moods = FeatureGroup(
    "moods", entity=listener_only, event_time="ts", online=Online(ttl="30d"),
    owner="music", description="Listener moods",
)


@moods.feature(Integral, description="Mood score")
def mood(mood: int) -> int:
    return mood


pair = FeatureSet("pair", [n_tracks, mood], label_time="label_time", labels=["liked"])
"""
AT = "2024-01-05T00:00:00Z"  # listens L902/77 (2024-01-01) is 4 days old: within 7d, not 3d


def _serve_model_vector(root: Path, model: Path, request: dict[str, object]) -> dict[str, object]:
    """``fsgen serve-model --as-of AT`` in its own process: one POST /invocations."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--project", str(root), "serve-model", "pair", "--model", str(model)]
    process = subprocess.Popen(
        [sys.executable, "-m", "fsgen.cli", *args, "--port", str(port), "--as-of", AT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # wait for the server to come up (not a timing assertion)
            try:
                with urllib.request.urlopen(url + "/ping", timeout=1):
                    break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"serve-model exited: {process.stderr.read()}")  # type: ignore[union-attr]
                time.sleep(0.1)
        else:
            pytest.fail("serve-model did not answer /ping")
        call = urllib.request.Request(
            url + "/invocations",
            data=json.dumps(request).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(call, timeout=30) as response:
            features: dict[str, object] = json.loads(response.read())["predictions"][0]["features"]
        return features
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_ttl_change_training_serving_and_skew_check_agree(deployed: Path, tmp_path: Path) -> None:
    """7d -> 3d and apply: at one instant `get --as-of`, `fsgen dataset`, `serve-model` and
    `skew-check` all see the record written under 7d (its ExpiresAt is EventTime + 7d), and
    after a re-ingest (stamped with 3d) all miss it."""
    defs = deployed / "musicdefs" / "groups.py"
    defs.write_text(defs.read_text() + MOODS_DEFS)
    apply(deployed)
    (deployed / "moods.csv").write_text("listener_id,ts,mood\nL902,2024-01-05T00:00:00Z,4\n")
    for group in ("listens", "moods"):
        code, _, err = run(deployed, "ingest", group, str(deployed / f"{group}.csv"))
        assert code == 0, err
    defs.write_text(
        defs.read_text().replace(
            '"listens", entity=listener, event_time="ts", online=Online(ttl="7d")',
            '"listens", entity=listener, event_time="ts", online=Online(ttl="3d")',
        )
    )
    code, out, err = run(deployed, "plan")
    assert code == 0, err
    assert "Records already written keep the ExpiresAt they were written with" in out
    assert "new records expire after 3d" in out
    apply(deployed)
    code, out, _ = run(deployed, "plan", "--detailed-exitcode")
    assert code == 0, out  # the recorded history is no change to plan
    labels = tmp_path / "labels.csv"
    labels.write_text(f"listener_id,artist_id,label_time,liked\nL902,77,{AT},1\nL902,78,{AT},0\n")

    def agree(n_tracks: int | None) -> None:
        code, out, err = run(deployed, "get", "listens", *L902_77, "--json", "--as-of", AT)
        assert code == (0 if n_tracks is not None else 1), (out, err)
        if n_tracks is not None:
            assert json.loads(out)["n_tracks"] == n_tracks
        output = tmp_path / "train.csv"
        code, _, err = run(
            deployed, "dataset", "pair", "--labels", str(labels), "--output", str(output)
        )
        assert code == 0, err
        import pandas as pd

        row = pd.read_csv(output).iloc[0]
        assert (None if pd.isna(row["n_tracks"]) else int(row["n_tracks"])) == n_tracks
        code, out, err = run(deployed, "skew-check", "pair", "--labels", str(labels), "--json")
        assert code == 0, (out, err)
        model = tmp_path / "model.json"
        code, _, err = run(
            deployed, "train", "pair", "--labels", str(labels), "--output", str(model)
        )
        assert code == 0, err
        served = _serve_model_vector(deployed, model, {"listener_id": "L902", "artist_id": 77})
        assert served["n_tracks"] == n_tracks and served["mood"] == 4

    agree(3)  # written under 7d: training, serving and the check all see it on 2024-01-05
    code, _, err = run(deployed, "ingest", "listens", str(deployed / "listens.csv"))
    assert code == 0, err
    agree(None)  # re-stamped with 3d: expired on 2024-01-05 everywhere
