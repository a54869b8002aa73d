"""Record commands: get, delete-record (``fsgen ingest`` is in :mod:`fsgen.cli.ingest`).

Each opens the project's backend data plane once (``fsgen.backends.open_data_plane``: the
embedded store, or sagemaker-featurestore-runtime through boto3 with ``--backend aws``,
``fsgen serve`` included) and runs the same batch pipeline, validation and rejects on either."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import click

from fsgen.cli._app import (
    ISO_TIME,
    AppContext,
    echo_json,
    handle_errors,
    main,
    pass_app,
)

if TYPE_CHECKING:
    from fsgen.backends.base import DataPlane
    from fsgen.spec import GroupSpec, KeySpec


def open_plane(
    app: AppContext, endpoint_url: str | None = None, group: str | None = None
) -> DataPlane:
    """The backend's data plane (``--backend``), opened once for the command; ``group``: the
    group the command reads or writes records of (checked first, see :func:`records_of`)."""
    from fsgen.backends import open_data_plane

    if group is not None:
        records_of(app, group)
    return open_data_plane(
        app.config,
        app.spec,
        app.backend_name,
        on_wait=lambda msg: app.err.print(f"[yellow]{msg}[/yellow]"),
        endpoint_url=endpoint_url,
    )


def records_of(app: AppContext, group: str) -> None:
    """Refuse delete-record on a group whose features are aggregations: it does not delete
    aggregation states (derived from the offline events), and must not report success (the
    README's Aggregations section).
    Ingestion and the stream commands write them; get reads them (:func:`_aggregated_record`)."""
    spec = app.spec.group(group)
    if spec.aggregations:
        from fsgen.errors import FsgenError

        names = ", ".join(a.name for a in spec.aggregations)
        raise FsgenError(
            f"{group}: its features are aggregations ({names}), derived from the events in "
            "the offline history, which delete-record does not remove; nothing was read or "
            "written (to forget an entity, purge its events and re-ingest: see the README's "
            "Aggregations section)"
        )


def _key_text(group: str, key: KeySpec, value: str) -> str:
    """A key part as ingestion stores it: an Integral part in canonical decimal (``007`` is
    ``7``), refused when it is no integer instead of looking up a record that cannot exist."""
    from click import UsageError

    from fsgen.types import Integral

    if key.dtype != Integral:
        return value
    if re.fullmatch(r"[+-]?[0-9]+", value.strip()) is None:
        raise UsageError(f"{group}: key {key.name} is Integral; {value!r} is not an integer")
    return str(int(value))


def _record_id(app: AppContext, group: str, record_id: str | None, keys: tuple[str, ...]) -> str:
    """The record identifier of ``RECORD_ID`` or of ``--key name=value`` parts (a composite key
    by its parts, in any order; the stored identifier is :func:`composite_identifier`)."""
    from click import UsageError

    from fsgen.runtime.pipeline import composite_identifier

    spec = app.spec.group(group)
    names = [k.name for k in spec.entity.keys]
    if record_id is not None and keys:
        raise UsageError("give either RECORD_ID or --key NAME=VALUE parts, not both")
    if not keys:
        if record_id is None:
            raise UsageError(
                f"{group}: missing record id: give RECORD_ID or "
                + " ".join(f"--key {n}=VALUE" for n in names)
            )
        if len(names) > 1 and not record_id.endswith(";"):
            raise UsageError(
                f"{group} has a composite key ({', '.join(names)}): address a record by its "
                "parts, " + " ".join(f"--key {n}=VALUE" for n in names)
            )
        if len(names) == 1:
            return _key_text(group, spec.entity.keys[0], record_id)
        return record_id
    parts: dict[str, str] = {}
    for item in keys:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--key {item!r}: expected NAME=VALUE (key parts: {', '.join(names)})")
        if name not in names:
            raise UsageError(
                f"--key {name}: {group} has no key part {name!r} (key parts: {', '.join(names)})"
            )
        if name in parts:
            raise UsageError(f"--key {name} is given twice")
        parts[name] = _key_text(group, next(k for k in spec.entity.keys if k.name == name), value)
    missing = [n for n in names if n not in parts]
    if missing:
        raise UsageError(
            f"{group}: missing key part{'s' if len(missing) > 1 else ''} "
            + ", ".join(missing)
            + " (give "
            + " ".join(f"--key {n}=VALUE" for n in missing)
            + ")"
        )
    if len(names) == 1:
        return parts[names[0]]
    return composite_identifier([parts[n] for n in names])


_KEY_OPTION = click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="NAME=VALUE",
    help="A key part by name instead of RECORD_ID (repeat for each part of a composite key).",
)


@main.command()
@click.argument("group")
@click.argument("record_id", required=False)
@_KEY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON on stdout.")
@click.option(
    "--feature", "features", multiple=True, help="Only these features (repeatable; default: all)."
)
@click.option(
    "--as-of",
    "as_of",
    type=ISO_TIME,
    default=None,
    help="The record as of this time (ISO-8601): TTL expiry is judged then, and a record "
    "whose event time is after it is not returned (for an aggregation group: a state holding "
    "events after it).",
)
@pass_app
@handle_errors
def get(
    app: AppContext,
    group: str,
    record_id: str | None,
    keys: tuple[str, ...],
    as_json: bool,
    features: tuple[str, ...],
    as_of: float | None,
) -> None:
    """Print GROUP's online record RECORD_ID (exit 1 when there is none, saying why: never
    written, TTL expired at ..., soft- or hard-deleted at ..., as far as the backend knows).

    A composite key is given by its parts: ``--key listener_id=L902 --key artist_id=77``."""
    from fsgen.bind import group_runtime
    from fsgen.errors import NotFound
    from fsgen.runtime.encoding import format_event_time

    if app.spec.group(group).aggregations:
        rid = _record_id(app, group, record_id, keys)
        _print_record(_aggregated_record(app, group, rid, features, as_of), as_json)
        return
    records_of(app, group)
    rid = _record_id(app, group, record_id, keys)
    spec = app.spec.group(group)
    known = [name for name, _ in spec.stored_columns()]
    unknown = [f for f in features if f not in known]
    if unknown:
        raise NotFound(
            f"{group}: no feature {', '.join(map(repr, unknown))} (known: {', '.join(known)})"
        )
    now = as_of
    plane = open_plane(app)
    try:
        record = plane.get_record(group, rid, None, now=now)
        reason = plane.missing_reason(group, rid, now=now) if record is None else ""
    finally:
        plane.close()
    if record is None:
        raise NotFound(f"{group}: no online record {rid!r}: {reason}")
    if now is not None:
        rt = group_runtime(spec)
        event = rt.event_seconds(record)
        if event > now:
            raise NotFound(
                f"{group}: the online record {rid!r} has event time "
                f"{record.get(rt.event_time)}, after --as-of {format_event_time('String', now)}; "
                "the online store keeps "
                "only the latest record (use `fsgen dataset` for older values)"
            )
    if features:
        record = {f: record.get(f) for f in features}
    _print_record(record, as_json)


def warn_hidden(app: AppContext, group: str, hidden: list[tuple[str, str]]) -> None:
    """Say which aggregation states a write stored but the online store does not return: a
    state record's EventTime is its write time, and a SoftDelete with a later EventTime
    keeps every earlier put out (SageMaker's latest-event-time rule), so those entities'
    events are in the offline history while GetRecord and serving find nothing."""
    from fsgen.runtime.batch import hidden_states_text

    if hidden:
        app.err.print(f"[yellow]warning[/yellow]: {hidden_states_text(group, hidden)}")


def _print_record(record: dict[str, object], as_json: bool) -> None:
    if as_json:
        echo_json(json.dumps(record, indent=2, sort_keys=False))
        return
    width = max(len(k) for k in record)
    for key, value in record.items():
        click.echo(f"{key.ljust(width)}  {'-' if value is None else value}")


def _aggregated_record(
    app: AppContext, group: str, rid: str, features: tuple[str, ...], as_of: float | None
) -> dict[str, object]:
    """An aggregation group's online state for ``rid``, finalized at ``as_of`` (default now)
    exactly as the generated parser does: the keys, the state's write time and every
    ``<name>_<window>`` feature (or the ``features`` named)."""

    from fsgen.errors import NotFound, StoreError
    from fsgen.runtime.aggcodec import for_group
    from fsgen.runtime.aggdef import AggregationError
    from fsgen.runtime.aggread import finalize_record

    spec = app.spec.group(group)
    known = list(spec.output_names())
    unknown = [f for f in features if f not in known]
    if unknown:
        # an aggregation's own name is no feature: each of its windows is one
        windows = [
            f"{f!r} is an aggregation: its features are {', '.join(a.feature_names)}"
            for f in unknown
            for a in spec.aggregations
            if a.name == f
        ]
        raise NotFound(
            f"{group}: no feature {', '.join(map(repr, unknown))} "
            + (f"({'; '.join(windows)})" if windows else f"(known: {', '.join(known)})")
        )
    plane = open_plane(app)
    try:
        record = plane.get_record(group, rid, None, now=as_of)
        reason = plane.missing_reason(group, rid, now=as_of) if record is None else ""
    finally:
        plane.close()
    if record is None:
        raise NotFound(f"{group}: no online aggregation state for {rid!r}: {reason}")
    at = time.time_ns() // 1000 if as_of is None else round(as_of * 1_000_000)
    states = {a.state_column: record.get(a.state_column) for a in spec.aggregations}
    try:
        if as_of is not None:
            _refuse_before_watermark(group, rid, spec, states, features, at)
        else:
            _note_ahead_of_now(app, group, rid, spec, states, features, at)
        values = finalize_record(
            [a.runtime() for a in spec.aggregations],
            {k: v if isinstance(v, str) else None for k, v in states.items()},
            at,
            features or None,  # only the states of the features named are decoded
        )
    except AggregationError as exc:  # another definition's state, or an unreadable one
        reason = for_group(str(exc), group)
        raise StoreError(f"{group}: the online state of {rid!r} cannot be read: {reason}") from None
    head = {k.name: record.get(k.name) for k in spec.entity.keys}
    head["state_written_at"] = record.get(spec.event_time.name)
    return {**head, **{f: values[f] for f in (features or known)}}


def _newest_event(
    spec: GroupSpec, states: dict[str, object], features: tuple[str, ...]
) -> int | None:
    """The newest applied event (µs) of the states the features asked are read from."""
    from fsgen.runtime import aggcodec

    marks = [
        mark
        for a in spec.aggregations
        if isinstance(text := states.get(a.state_column), str)
        and (not features or any(f in features for f in a.runtime().feature_names))
        for mark in [aggcodec.decode(a.runtime(), text)[0]]
        if mark is not None
    ]
    return max(marks) if marks else None


def _note_ahead_of_now(
    app: AppContext,
    group: str,
    rid: str,
    spec: GroupSpec,
    states: dict[str, object],
    features: tuple[str, ...],
    at: int,
) -> None:
    """A state whose newest event is after this machine's clock (a producer's clock ahead,
    within the day ingestion takes) answers as of that event, as serving does; say so rather
    than show those values as now's."""
    from fsgen.runtime.encoding import format_event_time

    newest = _newest_event(spec, states, features)
    if newest is not None and at < newest:
        app.err.print(
            f"note: {group}: the online state of {rid!r} holds events up to "
            f"{format_event_time('String', newest / 1_000_000)}, after now "
            f"({format_event_time('String', at / 1_000_000)}); the values are as of that "
            "newest event, as serving reads them",
            markup=False,
        )


def _refuse_before_watermark(
    group: str,
    rid: str,
    spec: GroupSpec,
    states: dict[str, object],
    features: tuple[str, ...],
    at: int,
) -> None:
    """A state is exact only from its newest applied event on (the watermark); read earlier,
    it answers as of the watermark, which ``--as-of`` would show under the earlier date."""
    from fsgen.errors import NotFound
    from fsgen.runtime.encoding import format_event_time

    newest = _newest_event(spec, states, features)
    if newest is not None and at < newest:
        shown = format_event_time("String", newest / 1_000_000)
        raise NotFound(
            f"{group}: the online state of {rid!r} holds events up to {shown}, after --as-of "
            f"{_iso_micros(at)}; an online state answers only from "
            "its newest event on (use `fsgen dataset` for older values)"
        )


def _iso_micros(micros: int) -> str:
    """An epoch-microsecond query time as ISO-8601 UTC, to the millisecond or microsecond."""
    from datetime import UTC, datetime, timedelta

    from fsgen.runtime.encoding import format_event_time

    if micros % 1000 == 0:
        return str(format_event_time("String", micros / 1_000_000))
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@main.command()
@click.argument("group")
@click.argument("record_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@pass_app
@handle_errors
def backfill(app: AppContext, group: str, record_ids: tuple[str, ...], as_json: bool) -> None:
    """Rebuild aggregation GROUP's online states from its offline event history: every
    entity's (or RECORD_IDS'), under the current definitions. After a window, hop, lateness or
    function change it repairs every state, those only the stream ever wrote included."""
    import json
    import time

    from fsgen import audit
    from fsgen.errors import FsgenError

    plane = open_plane(app)
    started = time.monotonic()
    try:
        rebuilt, refused = plane.rebuild_states(group, list(record_ids) or None)
    finally:
        plane.close()
    audit.record_backfill(
        app.config.store_path,
        group=group,
        record_ids=list(record_ids),
        rebuilt=rebuilt,
        refused=list(refused),
        seconds=time.monotonic() - started,
        backend=plane.name,
    )
    if as_json:
        click.echo(
            json.dumps({"group": group, "rebuilt": rebuilt, "refused": [list(r) for r in refused]})
        )
    app.err.print(f"{group}: rebuilt {rebuilt:,} online state(s) from the offline event history")
    for record_id, reason in refused:
        app.err.print(f"  not rebuilt {record_id!r}: {reason}", markup=False)
    if refused:
        raise FsgenError(f"{group}: {len(refused):,} state(s) would not fit a record")


@main.command("delete-record")
@click.argument("group")
@click.argument("record_id", required=False)
@_KEY_OPTION
@click.option(
    "--event-time",
    "event_time",
    required=True,
    help="The delete's event time (ISO-8601, or epoch seconds for Fractional).",
)
@click.option("--hard", is_flag=True, help="HardDelete: remove the online row entirely.")
@click.option(
    "--force",
    is_flag=True,
    help="Delete even when the online store has no such record (a tombstone for offline "
    "history only, e.g. of a record the online store no longer returns).",
)
@pass_app
@handle_errors
def delete_record(
    app: AppContext,
    group: str,
    record_id: str | None,
    keys: tuple[str, ...],
    event_time: str,
    hard: bool,
    force: bool,
) -> None:
    """Delete RECORD_ID from GROUP like SageMaker's DeleteRecord (SoftDelete by default);
    a tombstone (is_deleted=true) is appended to the offline store, and the delete is
    recorded in the audit trail (``fsgen history --kind delete``). A record that is not in
    the online store (never written, or already deleted) is an error and nothing is written.
    """
    import math

    from fsgen import audit
    from fsgen.bind import group_runtime
    from fsgen.errors import NotFound
    from fsgen.store.local import event_time_value

    records_of(app, group)
    rid = _record_id(app, group, record_id, keys)
    spec = app.spec.group(group)
    event_time_value(group_runtime(spec), event_time)  # a bad event time fails first
    mode = "HardDelete" if hard else "SoftDelete"
    plane = open_plane(app)
    try:
        missing = spec.online.enabled and not force
        if missing and plane.get_record(group, rid, None, now=-math.inf) is None:
            why = "never written, or already deleted"
            if plane.name == "aws":  # GetRecord hides an expired record too; locally it is kept
                why = "never written, already deleted, or expired: GetRecord returns none of them"
            raise NotFound(
                f"{group}: no online record {rid!r} to delete ({why}); nothing written "
                "(--force writes the offline tombstone anyway)"
            )
        result = plane.delete_record(group, rid, event_time, hard=hard)
    finally:
        plane.close()
    audit.record_delete(
        app.config.store_path,
        group=group,
        record_id=rid,
        event_time=str(result.event_time),
        mode=mode,
        online_applied=result.online_applied,
        backend=plane.name,
    )
    if result.online_applied:
        click.echo(
            f"{mode} {group} {rid} at {result.event_time}: deleted online, "
            "tombstone written offline"
        )
    else:
        click.echo(
            f"{mode} {group} {rid} at {result.event_time}: the online record is "
            "newer and was kept; tombstone written offline",
            err=True,
        )
