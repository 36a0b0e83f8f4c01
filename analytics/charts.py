"""Line charts drawn on the server as SVG, for the admin dashboard: no JavaScript, no CDN.

`line_chart()` takes named series of (time, value) points and returns the SVG markup plus
the legend (name, colour). Missing values (None) break a line instead of drawing it to zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Okabe-Ito, readable for the common colour-vision deficiencies, then a few more.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#999999",
    "#8C564B",
)
WIDTH, HEIGHT = 880, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 26


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[datetime, float | None]]
    dashed: bool = False


@dataclass(frozen=True)
class Chart:
    svg: SafeString
    legend: tuple[tuple[str, str, bool], ...]  # (name, colour, dashed)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above `value` (an axis maximum)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude * (1 + 1e-9):
            return step * magnitude
    return 10 * magnitude


def line_chart(
    series: Sequence[Series],
    *,
    start: datetime,
    end: datetime,
    label: Callable[[float], str],
    y_max: float | None = None,
    y_min: float = 0.0,
    description: str = "",
) -> Chart:
    """A chart of `series` between `start` and `end`; `label` formats the y-axis values."""
    values = [v for s in series for _, v in s.points if v is not None]
    top = y_max if y_max is not None else nice_ceiling(max(values, default=0.0))
    bottom = y_min
    if top <= bottom:
        top = bottom + 1.0
    span_s = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + plot_w * (moment - start).total_seconds() / span_s

    def y(value: float) -> float:
        clamped = min(max(value, bottom), top)
        return TOP + plot_h * (1 - (clamped - bottom) / (top - bottom))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-label="{escape(description)}" class="auterity-chart">'
    ]
    for i in range(5):
        tick = bottom + (top - bottom) * i / 4
        ty = y(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}" '
            f'stroke="#e4e7ec" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#475467">{escape(label(tick))}</text>'
        )
    for moment, text in _time_ticks(start, end):
        tx = x(moment)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" y2="{HEIGHT - BOTTOM}" '
            f'stroke="#f2f4f7" stroke-width="1"/>'
            f'<text x="{tx:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
            f'fill="#475467">{escape(text)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        f'stroke="#98a2b3" stroke-width="1"/>'
    )
    legend = []
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        legend.append((one.name, colour, one.dashed))
        dash = ' stroke-dasharray="6 4"' if one.dashed else ""
        parts.append(f"<g><title>{escape(one.name)}</title>")
        for segment in _segments(one.points):
            if len(segment) == 1:
                (moment, value) = segment[0]
                parts.append(
                    f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="2.5" fill="{colour}"/>'
                )
                continue
            coords = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in segment)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} '
                f'stroke-linejoin="round" points="{coords}"/>'
            )
        parts.append("</g>")
    if not values:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
            f'font-size="13" fill="#667085">No data in this range</text>'
        )
    parts.append("</svg>")
    return Chart(mark_safe("".join(parts)), tuple(legend))


def _segments(points):
    segment = []
    for moment, value in sorted(points, key=lambda p: p[0]):
        if value is None:
            if segment:
                yield segment
            segment = []
        else:
            segment.append((moment, value))
    if segment:
        yield segment


def _time_ticks(start: datetime, end: datetime, count: int = 6):
    span = (end - start).total_seconds()
    if span <= 0:
        return []
    fmt = "%H:%M" if span <= 2 * 86400 else "%b %d"
    ticks = []
    for i in range(count + 1):
        moment = start + (end - start) * i / count
        ticks.append((moment, timezone.localtime(moment).strftime(fmt)))
    return ticks
