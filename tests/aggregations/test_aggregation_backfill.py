"""``fsgen backfill GROUP``: an aggregation group's online states rebuilt from the offline event
history without a file, so a window or function change can be repaired for every entity,
also one only the stream ever wrote (re-ingesting the batch files touches only theirs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from aggproject import HOUR, T0, event_rows, iso, make, state_runtime, write_events, write_states
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.codegen import generate
from fsgen.store.local import LocalStore

EVENTS = [
    ("c1", T0 + 0.5 * HOUR, 1, {"amount": 10.0, "category": "books"}),
    ("c1", T0 + 2 * HOUR, 2, {"amount": 30.0, "category": "games"}),
    ("c2", T0 + 1 * HOUR, 3, {"amount": 7.5, "category": "food"}),
]


def test_backfill_rebuilds_every_state_of_another_definition(
    make_project: Callable[..., Path],
) -> None:
    config, spec = make(make_project)
    group = spec.group("purchases")
    rows = event_rows(group, EVENTS)
    with LocalStore.open(config, spec) as store:
        write_events(store, group, rows)
        states = write_states(store, group, rows, T0 + 3 * HOUR)
        stale = []
        for customer, encoded in states.items():  # states of another definition
            body = json.loads(encoded["purchase_count__state"])
            body[1] = "0" * len(str(body[1]))
            old = json.dumps(body, separators=(",", ":"))
            stale.append(
                {
                    "customer_id": customer,
                    "purchased_at": iso(T0 + 3 * HOUR),
                    **encoded,
                    "purchase_count__state": old,
                }
            )
        store.adopt(state_runtime(group), online=True, offline=False)
        store.put_records("purchases", stale)
    generate(config, spec)
    runner = CliRunner()
    base = ["--project", str(config.root)]
    assert runner.invoke(main, [*base, "apply", "--auto-approve"]).exit_code == 0
    get = [*base, "get", "purchases", "c2", "--json", "--as-of", iso(T0 + 4 * HOUR)]
    assert runner.invoke(main, get).exit_code == 1  # refused: another definition
    result = runner.invoke(main, [*base, "backfill", "purchases", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"group": "purchases", "rebuilt": 2, "refused": []}
    assert "purchases: rebuilt 2 online state(s) from the offline event history" in result.stderr
    for customer, count in (("c1", 2), ("c2", 1)):
        get[4] = customer
        shown = runner.invoke(main, get)
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["purchase_count_lifetime"] == count
    result = runner.invoke(main, [*base, "backfill", "purchases", "c9"])
    assert result.exit_code == 1
    assert "purchases: no events in the offline history for 'c9': nothing was rebuilt" in (
        result.output
    )
    result = runner.invoke(main, [*base, "backfill", "profile"])
    assert result.exit_code == 1
    assert "profile: not an aggregation group" in result.output
    # the audit trail has the backfill that rewrote states, not the two that wrote nothing
    result = runner.invoke(main, [*base, "history", "--kind", "backfill"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].endswith(
        "local  ok  backfill purchases: rebuilt 2 online state(s) from the offline event "
        "history (every entity)"
    ), lines
    result = runner.invoke(main, [*base, "history", "--kind", "backfill", "--json"])
    entry = json.loads(result.stdout)
    assert (entry["kind"], entry["groups"], entry["details"]["rebuilt"]) == (
        "backfill",
        ["purchases"],
        2,
    )
