"""Python literals formatted the way ``ruff format`` (black style) leaves them.

Generated modules must pass ``ruff format --check`` without running ruff at generation time.
Two layouts are stable under that formatter, and this module only ever produces those:
a bracketed value on one line when it fits the line length, or exploded one item per line
with a trailing comma (the "magic trailing comma" keeps it exploded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

LINE_LENGTH = 100
INDENT = "    "


@dataclass(frozen=True)
class Code:
    """Source text emitted as is (a name or a dotted reference)."""

    text: str


@dataclass(frozen=True)
class Call:
    """``name(arg, ..., key=value, ...)``."""

    name: str
    args: tuple[object, ...] = ()
    kwargs: tuple[tuple[str, object], ...] = field(default_factory=tuple)


def string(text: str) -> str:
    """A string literal with the quotes ruff prefers (double, unless that needs more escapes)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    if text.count('"') > text.count("'"):
        return _quoted(text, "'")
    return _quoted(text, '"')


def doc(text: str) -> str:
    """``text`` made safe inside a generated (non-raw, triple-double-quoted) docstring: a
    backslash, a quote or a control character cannot end the docstring or change its
    meaning."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def _quoted(text: str, quote: str) -> str:
    out = []
    for ch in text:
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return quote + "".join(out) + quote


def literal(value: object, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """``value`` as source, laid out for a line starting with ``indent`` levels + ``prefix``
    and followed by ``suffix``."""
    return _layout(value, indent, prefix, suffix, {})


def _layout(value: object, indent: int, prefix: str, suffix: str, cache: dict[int, str]) -> str:
    flat = _flat(value, cache)
    if not isinstance(value, Call | tuple | list | dict):
        return flat
    pad = INDENT * indent
    if len(pad) + len(prefix) + len(flat) + len(suffix) <= LINE_LENGTH:
        return flat
    opener, closer, items = _parts(value, cache)
    if not items:
        return flat
    inner = INDENT * (indent + 1)
    lines = [opener]
    for key, item in items:
        lines.append(inner + key + _layout(item, indent + 1, key, ",", cache) + ",")
    lines.append(pad + closer)
    return "\n".join(lines)


def statement(name: str, value: object, annotation: str | None = None) -> str:
    """``name[: annotation] = value`` at module level."""
    target = f"{name}: {annotation} = " if annotation else f"{name} = "
    return target + literal(value, 0, target)


def _flat(value: object, cache: dict[int, str] | None = None) -> str:
    """One-line source of ``value``; containers are memoized by identity for one layout."""
    if isinstance(value, Code):
        return value.text
    if isinstance(value, str):
        return string(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    cache = {} if cache is None else cache
    key = id(value)
    if key not in cache:
        opener, closer, items = _parts(value, cache)
        body = ", ".join(f"{k}{_flat(v, cache)}" for k, v in items)
        if isinstance(value, tuple) and len(items) == 1:
            body += ","
        cache[key] = f"{opener}{body}{closer}"
    return cache[key]


def _parts(
    value: object, cache: dict[int, str] | None = None
) -> tuple[str, str, list[tuple[str, object]]]:
    if isinstance(value, Call):
        items: list[tuple[str, object]] = [("", a) for a in value.args]
        items += [(f"{k}=", v) for k, v in value.kwargs]
        return f"{value.name}(", ")", items
    if isinstance(value, tuple):
        return "(", ")", [("", v) for v in value]
    if isinstance(value, Mapping):
        return "{", "}", [(f"{_flat(k, cache)}: ", v) for k, v in value.items()]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[", "]", [("", v) for v in value]
    raise TypeError(f"cannot render {value!r} as a Python literal")


POSITIONAL = frozenset({"FieldDef"})
"""declarations written with positional arguments (short, and read that way)"""


def declaration(value: object) -> object:
    """A runtime declaration (a dataclass from :mod:`fsgen.bind`, nested in tuples) as the
    :class:`Call` that rebuilds it: each field that differs from its default, in field
    order; the ``fn`` fields hold :class:`Code` references to the imported functions."""
    if isinstance(value, Code | Call):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items: list[tuple[str, object]] = []
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            item = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and item == f.default:
                continue
            items.append((f.name, declaration(item)))
        name = type(value).__name__
        if name in POSITIONAL:
            return Call(name, tuple(v for _, v in items))
        return Call(name, kwargs=tuple(items))
    if isinstance(value, tuple):
        return tuple(declaration(v) for v in value)
    return value
