"""The demo's inference steps: train on the point-in-time training set, serve the model over
HTTP and query it, then prove training = serving with the skew check."""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsgen.demo_context import DemoContext
    from fsgen.spec import ProjectSpec
    from fsgen.store import LocalStore

FEATURE_SET = "fraud-model"
LABELS = "data/labels.csv"


def _ensure_ingested(ctx: DemoContext, spec: ProjectSpec, store: LocalStore) -> None:
    """Ingest each group's batch sources when an earlier step has not (a group with no online
    records), so these steps also run on their own."""
    for group in spec.groups:
        if store.online.count(store.runtime(group.name)):
            continue
        for source in group.sources:
            if source.kind == "batch" and source.path:
                result = store.ingest(
                    group.name,
                    ctx.config.root / source.path,
                    ctx.workdir / f"rejects-{group.name}.jsonl",
                )
                ctx.say(f"  (ingested {source.path}: {result.summary()})")


def _demo_time(store: LocalStore, spec: ProjectSpec) -> float:
    """The instant every group has fresh records: the earliest of the groups' latest event
    times (the sample data is historical, so "now" would find every record expired)."""
    return min(
        max(seconds for seconds, _, _ in store.online.snapshot(store.runtime(g.name)).values())
        for g in spec.groups
    )


def _freshest(store: LocalStore, group: str, n: int, as_of: float) -> list[str]:
    """The ids of the ``n`` most recently updated live records of ``group`` as of ``as_of``."""
    rows = store.online.snapshot(store.runtime(group))
    live = sorted(
        (r for r in rows.items() if not r[1][1] and r[1][0] <= as_of), key=lambda r: -r[1][0]
    )
    return [record_id for record_id, _ in live[:n]]


def step_train(ctx: DemoContext) -> None:
    """`fsgen train fraud-model --labels data/labels.csv --output <workdir>/model`."""
    from fsgen.loader import load
    from fsgen.store import LocalStore
    from fsgen.train import train_from_labels

    spec = load(ctx.config.root)
    with LocalStore.open(ctx.config, spec) as store:
        _ensure_ingested(ctx, spec, store)
    ctx.say(f"$ fsgen train {FEATURE_SET} --labels {LABELS} --output model/")
    path, frame, model = train_from_labels(
        ctx.config, spec, FEATURE_SET, ctx.config.root / LABELS, ctx.workdir / "model"
    )
    positives = int(frame[model["label"]].sum())
    ctx.say(
        f"  point-in-time training set: {len(frame)} rows, {positives} positive; "
        f"logistic regression written to {path.relative_to(ctx.workdir.parent)}"
    )
    strongest = sorted(model["terms"], key=lambda t: -abs(t["weight"]))[:3]
    ctx.say(
        "  strongest terms: "
        + ", ".join(
            f"{t['column']}{'=' + t['value'] if 'value' in t else ''} ({t['weight']:+.2f})"
            for t in strongest
        )
    )


def _post(url: str, payload: object) -> dict[str, object]:
    request = urllib.request.Request(
        url + "/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def step_serve(ctx: DemoContext) -> None:
    """`fsgen serve-model fraud-model --model model/ --port 0` in the background, then requests."""
    from datetime import UTC, datetime

    from fsgen.loader import load
    from fsgen.serving.handler import load_handler
    from fsgen.serving.http import serve_in_thread
    from fsgen.serving.sources import LocalRecordSource
    from fsgen.store import LocalStore

    spec = load(ctx.config.root)
    store = LocalStore.open(ctx.config, spec)
    as_of = _demo_time(store, spec)
    stamp = datetime.fromtimestamp(as_of, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    handler = load_handler(
        ctx.config,
        spec,
        FEATURE_SET,
        ctx.workdir / "model",
        LocalRecordSource(store, lambda: as_of),
        lambda: as_of,
    )
    server = serve_in_thread(handler)
    try:
        ctx.say(
            f"$ fsgen serve-model {FEATURE_SET} --model model/ --as-of {stamp}   ->  {server.url}"
        )
        with urllib.request.urlopen(server.url + "/ping", timeout=10) as response:
            ctx.say(f"  GET /ping -> {response.status} {response.read().decode()}")
        customers = _freshest(store, "customer-features", 2, as_of)
        merchants = _freshest(store, "merchant-features", 2, as_of)
        requests: list[dict[str, object]] = [
            {"customer_id": customers[0], "merchant_id": merchants[0], "amount": 120.5},
            {"customer_id": customers[1], "merchant_id": merchants[1], "amount": 2500.0},
            {"customer_id": "C9999", "merchant_id": merchants[0], "amount": 120.5},
        ]
        for payload in requests:
            answer = _post(server.url, payload)
            prediction = answer["predictions"][0]  # type: ignore[index]
            ctx.say(f"  POST /invocations {json.dumps(payload)}")
            ctx.say(
                f"    -> probability {prediction['probability']:.4f}, is_fraud "
                f"{prediction['is_fraud']}, features {json.dumps(prediction['features'])}"
            )
        ctx.say(
            "  (C9999 is unknown: the feature set's missing='default' policy fills its "
            "customer features, as in training)"
        )
    finally:
        server.shutdown()
        server.server_close()
        store.close()


def step_skew_check(ctx: DemoContext) -> None:
    """`fsgen skew-check fraud-model --sample 200`."""
    from fsgen.loader import load
    from fsgen.serving.skew import skew_check

    spec = load(ctx.config.root)
    ctx.say(f"$ fsgen skew-check {FEATURE_SET} --sample 200")
    report = skew_check(ctx.config, spec, FEATURE_SET, sample=200)
    for line in report.render().splitlines():
        ctx.say(f"  {line}")
    if not report.ok:
        from fsgen.errors import FsgenError

        raise FsgenError("the skew check failed: training and serving disagree")
