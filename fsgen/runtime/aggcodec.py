"""The encoding of an aggregation state in one String feature, and the record size check.

Standard library only (see :mod:`fsgen.runtime.aggregate`), with orjson as an optional faster
parser of state strings where it is installed (a dependency of the fsgen package; a Lambda
deployment zip has the standard library only, and decodes the same values). It works on a
state's fields, not on ``AggregationState`` (which calls it): :func:`encode` is
``AggregationState.encode``, :func:`decode` parses a string into the fields with the tiles
column-wise, as the read path (:mod:`fsgen.runtime.aggread`) keeps them.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from operator import sub
from typing import Any, Protocol

from fsgen.runtime.aggdef import AggregationDef, AggregationError, Partial

_fast_loads: Callable[[bytes], Any] | None
try:
    from orjson import JSONDecodeError as _FastError
    from orjson import loads as _fast_loads
except ImportError:  # the standard library only: json's scanner parses every state
    _fast_loads = None

#: SageMaker's limit on one record (all features); the state strings of a group share it.
MAX_RECORD_BYTES = 350 * 1024
FORMAT_VERSION = 3

#: the state encoder: compact, UTF-8 as is, no NaN (a partial never holds one)
_STATE_JSON = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
).encode

#: :data:`_STATE_JSON` as the C encoder object itself, built once (``JSONEncoder.encode``
#: builds one per call): ``"".join(STATE_ENCODER(body, 0))`` is ``_STATE_JSON(body)``, for
#: a body of lists, ints, floats, strings and None; None where json has no C accelerator
STATE_ENCODER: Callable[[Any, int], Sequence[str]] | None = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, json.JSONEncoder().default, encode_basestring, None, ":", ",", False, False, False
    )
)

#: the state decoder: json.loads' own scanner called directly (a state string is one JSON
#: value, no whitespace around it), without loads' per-call Python steps; anything else goes
#: through json.loads as before
_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed

#: orjson parses a state several times faster than json's scanner (a state is mostly floats,
#: which it reads to the same, correctly rounded double) and gives the same lists, ints,
#: strings and None, except for integers beyond 64 bits, which it reads as floats. So a state
#: text with a run of 19 digits or more (the shortest integer that may not fit; a float's
#: repr has at most 17 digits in a row unless it starts 0.00, and a string may hold any) is
#: parsed by json's scanner, as is any text orjson refuses: json's answer or error is the one.
#: The runs are found at C speed: every digit translated to NUL, then one substring search.
_DIGITS_TO_NUL = bytes.maketrans(b"0123456789", bytes(10))
_LONG_RUN = bytes(19)

#: how a refused state's message says to rebuild it; :func:`for_group` names the group where
#: the caller knows it
BACKFILL_HINT = "fsgen backfill <group>"


def for_group(message: str, group: str) -> str:
    """``message`` (an :class:`AggregationError`'s) with its backfill hint naming ``group``."""
    return message.replace(BACKFILL_HINT, f"fsgen backfill {group}")


#: functions whose tile partial is a fixed-length list, by its length: the encoding stores
#: such tiles as that many columns (one list of counts, one of sums, ...), every other
#: function's partials as one column
WIDTH = {"mean": 2, "variance": 3, "variance_pop": 3, "stddev": 3, "stddev_pop": 3, "last": 4}

#: a parsed state: watermark, max sequence, tile keys, tile columns, frontier, prefix
Parsed = tuple[int | None, int, list[int], list[list[Any]], list[list[Any]], Partial]


class _Encodable(Protocol):
    """What :func:`encode_states` needs of a state (``AggregationState``)."""

    @property
    def definition(self) -> AggregationDef: ...

    def encode(self) -> str: ...


def encode(
    d: AggregationDef,
    watermark: int | None,
    max_sequence: int,
    keys: list[int],
    parts: list[Partial],
    frontier: list[list[Any]],
    prefix: Partial,
) -> str:
    """A state as one String feature value, its tiles given as sorted keys and their partials
    (:func:`needed`): compact JSON, lossless (floats by repr), tiles column-wise (see
    :func:`_body`)."""
    return _STATE_JSON(_body(d, watermark, max_sequence, keys, parts, frontier, prefix))


def needed(
    d: AggregationDef, tiles: Mapping[int, Partial], prefix: Partial
) -> tuple[list[int], list[Partial], Partial]:
    """The tiles (keys, partials, oldest first) and prefix a read can still need. For last /
    last_n, entries behind the newest n (the frontier aside, which a read at the watermark
    excludes) can never be an answer again, nor can a late event landing behind them; so the
    encoded state is canonical and small."""
    keys = sorted(tiles)
    parts = list(map(tiles.__getitem__, keys))
    if d.function not in ("last", "last_n"):
        return keys, parts, prefix
    need, found = d.n or 1, 0
    seen: set[object] = set()
    for i in range(len(keys) - 1, -1, -1):
        entries = [parts[i]] if d.function == "last" else parts[i]
        if d.distinct:
            seen.update(x[3] for x in entries)
            found = len(seen)
        else:
            found += len(entries)
        if found >= need:
            return keys[i:], parts[i:], None
    return keys, parts, prefix


def tiles_of(d: AggregationDef, keys: list[int], cols: list[list[Any]]) -> dict[int, Partial]:
    """Tile key -> partial from decoded columns (:func:`decode`)."""
    width = WIDTH.get(d.function, 0)
    parts = cols[0] if not width else [list(p) for p in zip(*cols, strict=True)]
    return dict(zip(keys, parts, strict=True))


def _body(
    d: AggregationDef,
    watermark: int | None,
    max_sequence: int,
    keys: list[int],
    parts: list[Partial],
    frontier: list[list[Any]],
    prefix: Partial,
) -> list[Any]:
    """The JSON body of a state, format 3: ``[3, fingerprint, watermark, max sequence, tile
    keys as differences (the first one as is), columns, frontier, prefix]``. Flat columns of
    numbers decode into few Python objects (cheap to parse, little for the garbage collector)
    and let a read sum a window's slice at C speed."""
    width = WIDTH.get(d.function, 0)
    if not width:
        cols: list[Sequence[Any]] = [parts]
    elif parts:
        # tuples: JSON encodes a tuple as the list it would be
        cols = list(zip(*parts, strict=True))
    else:
        cols = [[] for _ in range(width)]
    return [
        FORMAT_VERSION,
        d.fingerprint,
        watermark,
        max_sequence,
        [*keys[:1], *map(sub, keys[1:], keys)],  # the first key, then differences
        cols,
        frontier,
        prefix,
    ]


def decode(d: AggregationDef, text: str) -> Parsed:
    """Parse a non-empty state string; refuses an unreadable one, another format or another
    definition's state (with the backfill hint)."""
    try:
        body = _parsed(text)
        version = body[0] if isinstance(body, list) and body else None
    except (ValueError, TypeError, RecursionError) as exc:
        raise AggregationError(f"state of {d.name!r} is not readable: {exc}") from None
    if version != FORMAT_VERSION:
        raise AggregationError(
            f"state of {d.name!r} has format {version!r}, not {FORMAT_VERSION}; "
            "rebuild the states with a backfill (" + BACKFILL_HINT + ")"
        )
    try:
        _, built_for, wm, max_seq, deltas, cols, frontier, prefix = body
    except (ValueError, TypeError) as exc:
        raise AggregationError(f"state of {d.name!r} is not readable: {exc}") from None
    # before the shape check: another function's state has other columns, and its fix is
    # the backfill, not a corrupt state
    if built_for != d.fingerprint:
        raise AggregationError(
            f"state of {d.name!r} was built for another definition of it than this code's "
            "(its function, windows, hop or lateness differ): after a definition change, "
            "rebuild the states with a backfill (" + BACKFILL_HINT + "); if they were rebuilt "
            "since, this code is older than the definitions: regenerate and redeploy it "
            "(fsgen generate; fsgen package lambda for a stream handler)"
        )
    try:
        keys = list(accumulate(deltas))
        width = WIDTH.get(d.function, 0) or 1
        if len(cols) != width or any(len(c) != len(keys) for c in cols):
            raise ValueError("its tile columns do not match its tiles")
    except (ValueError, TypeError) as exc:
        raise AggregationError(f"state of {d.name!r} is not readable: {exc}") from None
    return wm, max_seq, keys, cols, frontier, prefix


def _parsed(text: str) -> Any:
    """The JSON value of a state string (orjson where it gives json's value, else json)."""
    if _fast_loads is not None and type(text) is str:
        try:
            raw = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: json's answer below
            raw = _LONG_RUN
        if _LONG_RUN not in raw.translate(_DIGITS_TO_NUL):
            try:
                return _fast_loads(raw)
            except _FastError:
                pass  # json's own answer or error below
    try:
        body, end = _SCAN(text, 0)
    except (StopIteration, TypeError):  # no value at 0, or not a str
        end = -1
    if end != len(text):  # not one bare JSON value: json.loads' own answer or error
        body = json.loads(text)
    return body


def encode_states(states: Sequence[_Encodable]) -> dict[str, str]:
    """State column -> encoded state for one record; refuses a record over 350 KB."""
    out = {s.definition.state_column: s.encode() for s in states}
    # a character is at most 4 bytes in UTF-8: only a record that could be over the limit
    # is measured in bytes
    if 4 * sum(map(len, out)) + 4 * sum(map(len, out.values())) <= MAX_RECORD_BYTES:
        return out
    sizes = [len(k) + len(v.encode("utf-8")) for k, v in out.items()]
    size = sum(sizes)
    if size > MAX_RECORD_BYTES:
        largest = max(range(len(sizes)), key=sizes.__getitem__)  # the one to look at first
        d = states[largest].definition
        raise AggregationError(
            f"aggregation state is {size:,} bytes ({d.name!r}, {d.function}: "
            f"{sizes[largest]:,}); a SageMaker record holds at most {MAX_RECORD_BYTES:,} (use a "
            "coarser hop, shorter windows, a smaller n or shorter values)"
        )
    return out
