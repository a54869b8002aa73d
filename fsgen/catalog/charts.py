"""The catalog's SVG charts of a feature's value distribution: a histogram for numeric
features, a top-values bar chart for the others. Every label is HTML-escaped."""

from __future__ import annotations

import html

from fsgen.catalog.stats import Bar, FeatureStats


def histogram_svg(stats: FeatureStats) -> str:
    """An inline SVG chart with its axes and counts: a histogram (numbers) or the most
    frequent values as horizontal bars (strings); empty without bars."""
    if not stats.bars:
        return ""
    if stats.kind == "numeric":
        return _numeric_svg(stats.bars)
    return _top_values_svg(stats.bars)


def _numeric_svg(bars: tuple[Bar, ...], width: int = 420, height: int = 120) -> str:
    left, bottom, top_pad = 48, 34, 8
    plot_w = width - left - 8
    total_h = top_pad + height + bottom
    top = max(b.count for b in bars) or 1
    gap = 2
    bar_w = (plot_w - gap * (len(bars) - 1)) / len(bars)
    base = top_pad + height
    parts = [
        f'<svg class="hist" role="img" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{left}" y2="{base}"/>',
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - 8}" y2="{base}"/>',
        f'<text class="y-tick" x="{left - 4}" y="{top_pad + 4}" text-anchor="end">{top:,}</text>',
        f'<text class="y-tick" x="{left - 4}" y="{base}" text-anchor="end">0</text>',
        f'<text class="y-label" x="10" y="{top_pad + height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 10 {top_pad + height / 2})">count</text>',
    ]
    for i, b in enumerate(bars):
        h = round(b.count / top * height, 2)
        x = round(left + i * (bar_w + gap), 2)
        title = html.escape(f"{b.label}: {b.count:,}")
        parts.append(
            f'<rect x="{x}" y="{round(base - h, 2)}" width="{round(bar_w, 2)}" '
            f'height="{h}"><title>{title}</title></rect>'
        )
    first, last = bars[0], bars[-1]
    mid = None if first.low is None or last.high is None else (first.low + last.high) / 2
    for x, anchor, value in (
        (left, "start", first.low),
        (left + plot_w / 2, "middle", mid),
        (width - 8, "end", last.high),
    ):
        parts.append(
            f'<text class="x-tick" x="{round(x, 2)}" y="{base + 14}" text-anchor="{anchor}">'
            f"{html.escape(_short(value))}</text>"
        )
    parts.append(
        f'<text class="x-label" x="{left + plot_w / 2}" y="{base + 29}" '
        f'text-anchor="middle">value</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _top_values_svg(bars: tuple[Bar, ...], width: int = 420, row: int = 18) -> str:
    label_w, count_w = 130, 56
    plot_w = width - label_w - count_w
    top = max(b.count for b in bars) or 1
    total_h = row * len(bars) + 4
    parts = [
        f'<svg class="hist top-values" role="img" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="{label_w}" y1="0" x2="{label_w}" y2="{total_h}"/>',
    ]
    for i, b in enumerate(bars):
        y = i * row + 2
        w = round(b.count / top * plot_w, 2)
        label = b.label if len(b.label) <= 20 else b.label[:19] + "\u2026"
        title = html.escape(f"{b.label}: {b.count:,}")
        parts.append(
            f'<text class="y-tick" x="{label_w - 4}" y="{y + row - 6}" text-anchor="end">'
            f"{html.escape(label)}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{row - 4}"><title>{title}</title>'
            f'</rect><text class="count" x="{label_w + w + 4}" y="{y + row - 6}">'
            f"{b.count:,}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(value: float | None) -> str:
    return "" if value is None else f"{value:,.4g}"


__all__ = ["histogram_svg"]
