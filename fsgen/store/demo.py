"""The demo's local-store steps: ingest the sample data (and show what a bad file's rejects
look like), then read online records the way ``fsgen get`` does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsgen.demo_context import DemoContext

SOURCES = (
    ("customer-features", "data/customers.csv"),
    ("merchant-features", "data/merchants.jsonl"),
    ("customer-features", "data/customers_with_errors.csv"),
)


def step_ingest(ctx: DemoContext) -> None:
    """`fsgen ingest` of each sample file; the last one has bad rows on purpose."""
    from fsgen.loader import load
    from fsgen.store import LocalStore

    spec = load(ctx.config.root)
    with LocalStore.open(ctx.config, spec) as store:
        for group, path in SOURCES:
            rejects = ctx.workdir / f"rejects-{group}-{path.rsplit('/', 1)[-1]}.jsonl"
            ctx.say(f"$ fsgen ingest {group} {path}")
            result = store.ingest(group, ctx.config.root / path, rejects)
            ctx.say(f"  {result.summary().replace(str(ctx.workdir) + '/', '')}")
            if result.rejected:
                ctx.say(
                    "  exit status 1: some records were rejected. The rejects file, one "
                    "JSON line each:"
                )
                for line in rejects.read_text().splitlines()[:4]:
                    entry = json.loads(line)
                    ctx.say(
                        f"    row {entry['row']}: {entry['field']}: {entry['reason']}",
                    )
        gdir = store.offline_dir("customer-features")
        files = sorted(gdir.glob("data/*/*/*/*/*.parquet"))
        ctx.say(
            f"  offline store: {len(files)} Parquet files under "
            f"{gdir.relative_to(ctx.workdir)}/data/year=/month=/day=/hour=/"
        )


def step_get(ctx: DemoContext) -> None:
    """`fsgen get` of a few records, as of the latest sample time (the sample data is from
    2024, so with a 30-day / 7-day TTL every record has expired by now -- as SageMaker would
    say too)."""
    from fsgen.loader import load
    from fsgen.runtime.encoding import format_event_time
    from fsgen.store import LocalStore

    spec = load(ctx.config.root)
    with LocalStore.open(ctx.config, spec) as store:
        for group, ids in (("customer-features", 2), ("merchant-features", 1)):
            rt = store.runtime(group)
            rows = store.online.snapshot(rt)
            as_of = max(seconds for seconds, _, _ in rows.values())
            stamp = format_event_time("String", as_of)
            latest = sorted(rows, key=lambda r: -rows[r][0])[:ids]
            for record_id in latest:
                ctx.say(f"$ fsgen get {group} {record_id} --as-of {stamp} --json")
                record = store.get_record(group, record_id, now=as_of)
                ctx.say("  " + json.dumps(record))
            ctx.say(
                f"  {store.online.count(rt)} {group} records online; "
                f"expired now: {store.get_record(group, latest[0]) is None}"
            )
