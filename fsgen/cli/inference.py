"""Inference commands: train, serve-model, skew-check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from fsgen.cli._app import EXIT_ERROR, AppContext, echo_json, handle_errors, main, pass_app


def _as_of(text: str | None) -> Callable[[], float] | None:
    if text is None:
        return None
    from fsgen.errors import ConfigError
    from fsgen.runtime.encoding import parse_event_time

    try:
        moment = parse_event_time("String", text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--as-of {text!r}: {exc}") from None
    return lambda: moment


@main.command()
@click.argument("feature_set")
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Label rows (CSV or Parquet): keys, label time, labels.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Where the model goes: a .json file, or a directory for model.json.",
)
@click.option("--label", default=None, help="Label column (default: the set's first label).")
@pass_app
@handle_errors
def train(app: AppContext, feature_set: str, labels: Path, output: Path, label: str | None) -> None:
    """Build FEATURE_SET's point-in-time training set for LABELS and train a logistic
    regression on it (needs scikit-learn: pip install 'fsgen[ml]')."""
    from fsgen.train import train_from_labels, unused_columns

    path, frame, model = train_from_labels(app.config, app.spec, feature_set, labels, output, label)
    app.err.print(f"trained on {len(frame):,} rows ({model['label']}); model written to {path}")
    unused = unused_columns(app.spec, feature_set)
    if unused:
        app.err.print(
            f"not used by the model: {', '.join(unused)} (List, Set and Vector columns: the "
            "linear model takes numbers and strings)"
        )


@main.command("serve-model")
@click.argument("feature_set")
@click.option(
    "--model",
    "model",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="model.json (fsgen train), or a directory holding it.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--endpoint-url",
    default=None,
    help="featurestore-runtime endpoint for --backend aws (default: the aws profile).",
)
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="ISO-8601",
    help="Judge TTL expiry at this instant instead of now (historical data; local backend).",
)
@pass_app
@handle_errors
def serve_model(
    app: AppContext,
    feature_set: str,
    model: Path,
    port: int,
    endpoint_url: str | None,
    as_of: str | None,
) -> None:
    """Serve FEATURE_SET's generated endpoint handler with MODEL on 127.0.0.1:
    POST /invocations and GET /ping, as a SageMaker inference container does. Features come
    from the local online store, or with --backend aws from SageMaker (or any compatible
    endpoint, such as fsgen serve)."""
    from fsgen.cli.store import open_plane
    from fsgen.serving.handler import load_handler
    from fsgen.serving.http import make_server

    clock = _as_of(as_of)
    plane = open_plane(app, endpoint_url)
    handler = load_handler(
        app.config, app.spec, feature_set, model, plane.record_source(clock), clock
    )
    server = make_server(handler, port)
    app.err.print(
        f"serving {feature_set} ({handler.module.__name__}) from the {plane.name} backend at "
        f"{server.url}  (POST /invocations, GET /ping; Ctrl-C stops)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        plane.close()


@main.command("skew-check")
@click.argument("feature_set")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Label rows to compare.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Take keys and request fields from this labels file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@pass_app
@handle_errors
def skew_check(
    app: AppContext, feature_set: str, sample: int, seed: int, labels: Path | None, as_json: bool
) -> None:
    """Compare FEATURE_SET's online vectors (read through the generated handler) with its
    point-in-time training rows for the same entities at the online records' event times.
    Every mismatch is reported by feature; exit status 1 on any."""
    from fsgen.cli.store import open_plane
    from fsgen.serving.skew import skew_check as run

    plane = open_plane(app)
    try:
        plane.local_store("skew-check")  # it samples the local online store
    finally:
        plane.close()
    report = run(app.config, app.spec, feature_set, sample=sample, seed=seed, labels=labels)
    if as_json:
        echo_json(json.dumps(report.to_dict(), indent=2, sort_keys=True, default=repr))
    else:
        click.echo(report.render())
    if not report.ok:
        raise SystemExit(EXIT_ERROR)
