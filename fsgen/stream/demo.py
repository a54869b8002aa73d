"""The demo's streaming step: replay ``data/customer_updates.jsonl`` through the generated
stream handler (Kinesis events as Lambda delivers them) into the demo store, and show two
customers' online values before and after."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsgen.demo_context import DemoContext

GROUP = "customer-features"
SOURCE = "data/customer_updates.jsonl"
SHOWN = ("avg_monthly_spend", "is_prime_member", "last_updated_time")


def _values(record: dict[str, object] | None) -> str:
    if record is None:
        return "(none online: never written, or expired by the TTL)"
    return ", ".join(f"{k}={record.get(k)!r}" for k in SHOWN)


def step_stream(ctx: DemoContext) -> None:
    """`fsgen stream replay customer-features data/customer_updates.jsonl`."""
    from fsgen.loader import load
    from fsgen.runtime.deadletter import JsonlDeadLetter
    from fsgen.runtime.encoding import format_event_time, parse_event_time
    from fsgen.store import LocalStore
    from fsgen.stream.events import load_handler
    from fsgen.stream.replay import replay

    spec = load(ctx.config.root)
    source = ctx.config.root / SOURCE
    lines = [json.loads(x) for x in source.read_text(encoding="utf-8").splitlines() if x.strip()]
    handler = load_handler(ctx.config, spec, GROUP)
    candidates = list(dict.fromkeys(str(r[handler.runtime.identifier]) for r in lines))
    as_of = max(parse_event_time("String", r["last_updated_time"]) for r in lines)
    ctx.say(f"$ fsgen stream replay {GROUP} {SOURCE} --batch-size 10")
    ctx.say(f"  [dim]{handler.note}[/dim]")
    with LocalStore.open(ctx.config, spec) as store:
        before = {i: store.get_record(GROUP, i, now=as_of) for i in candidates}
        # two customers the batch step already put online (and not expired by then), if any
        ids = ([i for i in candidates if before[i] is not None] + candidates)[:2]
        result = replay(
            handler,
            source,
            store.writer(GROUP),
            JsonlDeadLetter(ctx.workdir / "dead-letter.jsonl"),
            batch_size=10,
        )
        ctx.say(f"  {result.summary()}")
        ctx.say(
            f"  online values as of {format_event_time('String', as_of)} "
            "(the newest update replayed):"
        )
        for i in ids:
            ctx.say(f"    {i} before: {_values(before[i])}")
            ctx.say(f"    {i} after:  {_values(store.get_record(GROUP, i, now=as_of))}")
    ctx.say(
        "  Every update also went to the offline store (all of them, late ones too); "
        "online keeps the latest event time per customer."
    )
    ctx.say("  The same handler runs in AWS Lambda: fsgen package lambda customer-features")


AGG_GROUP = "purchases"
AGG_BATCH = "data/purchases.csv"
AGG_STREAM = "data/purchase_stream.jsonl"


def step_aggregations(ctx: DemoContext) -> None:
    """`fsgen ingest purchases data/purchases.csv` (the backfill: event rows offline, each
    customer's state rebuilt online), then `fsgen stream replay purchases ...` (the generated
    handler updates the states per event); a customer's aggregation features before and after,
    read the way serving reads them (decoded, merged and finalized at a time)."""
    from fsgen.loader import load
    from fsgen.runtime.aggregate import finalize_record
    from fsgen.runtime.deadletter import JsonlDeadLetter
    from fsgen.runtime.encoding import format_event_time, parse_event_time
    from fsgen.store import LocalStore
    from fsgen.stream.events import load_handler
    from fsgen.stream.replay import replay

    spec = load(ctx.config.root)
    definitions = [a.runtime() for a in spec.group(AGG_GROUP).aggregations]
    source = ctx.config.root / AGG_STREAM
    lines = [json.loads(x) for x in source.read_text(encoding="utf-8").splitlines() if x.strip()]
    at = max(parse_event_time("String", r["purchased_at"]) for r in lines) + 60
    customer = str(lines[-1]["customer_id"])

    def features(store: LocalStore) -> str:
        record = store.get_record(AGG_GROUP, customer)
        states = {k: v for k, v in (record or {}).items() if isinstance(v, str)}
        values = finalize_record(definitions, states, int(at * 1_000_000))
        return ", ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
        )

    with LocalStore.open(ctx.config, spec) as store:
        ctx.say(f"$ fsgen ingest {AGG_GROUP} {AGG_BATCH}")
        result = store.ingest(AGG_GROUP, ctx.config.root / AGG_BATCH)
        ctx.say(f"  {result.summary()}: event rows offline, one state per customer online")
        ctx.say(f"  {customer} as of {format_event_time('String', at)}: {features(store)}")
        handler = load_handler(ctx.config, spec, AGG_GROUP)
        ctx.say(f"$ fsgen stream replay {AGG_GROUP} {AGG_STREAM}")
        ctx.say(f"  [dim]{handler.note}[/dim]")
        dead = ctx.workdir / "dead-letter-purchases.jsonl"
        from fsgen.runtime.streamrecords import logs_to

        # as `fsgen stream replay` does: the failures are listed below, not also as log lines
        with logs_to(lambda line: None):
            streamed = replay(handler, source, store.writer(AGG_GROUP), JsonlDeadLetter(dead))
        ctx.say(f"  {streamed.summary()}")
        ctx.say(f"  {customer} as of {format_event_time('String', at)}: {features(store)}")
        for f in streamed.failures:
            ctx.say(
                f"  {AGG_STREAM}:{f['line']}: seq {f['sequenceNumber']}: dead-lettered: "
                f"{f['field']}: {str(f['message'])[:90]}"
            )
    ctx.say(
        "  A late event inside the allowed lateness updated its own tile; the one 2 hours "
        "late was dead-lettered (re-ingest it as a backfill to count it)."
    )
