"""Where a figure looks, as plain numbers: axis limits that zoom on a front and the points near it,
and the points left outside, to be drawn as labelled arrows at the edge (no drawing here).

A single far-off baseline (pruning-only at 0.08 mAP beside a front at 0.53-0.55) used to stretch
the axis so the front filled the top 5 % of the plot. Here the front sets the view; another point
joins it only when it lies within `reach` front-spans of the front; the rest are reported with
their values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["Extra", "OffView", "View", "zoom_view"]


@dataclass(frozen=True)
class Extra:
    """A point the view may include (a baseline, a reference line): `x` or `y` NaN = a line across."""

    label: str
    x: float
    y: float


@dataclass(frozen=True)
class OffView:
    """A point outside the view: drawn at (`at_x`, `at_y`) on the frame, pointing `side`."""

    label: str
    x: float
    y: float
    at_x: float
    at_y: float
    side: str  # "below" | "above" | "left" | "right" (the first that applies, y before x)


@dataclass(frozen=True)
class View:
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    inside: tuple[str, ...]  # labels of the extras inside the view
    outside: tuple[OffView, ...]

    def contains(self, x: float, y: float) -> bool:
        return self.xlim[0] <= x <= self.xlim[1] and self.ylim[0] <= y <= self.ylim[1]


def _span(lo: float, hi: float, floor: float) -> float:
    return max(hi - lo, floor)


def zoom_view(core_x: Sequence[float], core_y: Sequence[float], extras: Sequence[Extra], *, reach: float = 1.0,
              pad: float = 0.08, log_x: bool = False) -> View:
    """Limits holding every finite core point and every extra within `reach` core spans of them,
    padded by `pad` of the span on each side; the other extras as `OffView`s on the frame.

    A core of one point (or one value) gets a span of 2 % of its value (5 % across), so a single
    front point still has neighbours in view. With `log_x` the x spans are taken in log10.
    """
    fx = (lambda v: np.log10(np.clip(np.asarray(v, float), 1e-300, None))) if log_x else (lambda v: np.asarray(v, float))
    gx = (lambda v: float(10 ** v)) if log_x else float
    cx, cy = fx(core_x), np.asarray(core_y, float)
    ok = np.isfinite(cx) & np.isfinite(cy)
    cx, cy = cx[ok], cy[ok]
    ex = [(e, float(fx([e.x])[0]) if math.isfinite(e.x) else math.nan, e.y) for e in extras]
    if not len(cx):  # nothing to zoom on: every finite extra sets the view
        pts = [(x, y) for _, x, y in ex]
        xs = [x for x, _ in pts if math.isfinite(x)] or [0.0, 1.0]
        ys = [y for _, y in pts if math.isfinite(y)] or [0.0, 1.0]
        cx, cy = np.array([min(xs), max(xs)]), np.array([min(ys), max(ys)])
    x0, x1, y0, y1 = float(cx.min()), float(cx.max()), float(cy.min()), float(cy.max())
    sx = _span(x0, x1, 0.05 * max(abs(x1), 1e-9) if not log_x else 0.02)
    sy = _span(y0, y1, 0.02 * max(abs(y1), 1e-9))
    inside = []
    for e, x, y in ex:
        near_x = not math.isfinite(x) or x0 - reach * sx <= x <= x1 + reach * sx
        near_y = not math.isfinite(y) or y0 - reach * sy <= y <= y1 + reach * sy
        if near_x and near_y and (math.isfinite(x) or math.isfinite(y)):
            inside.append(e.label)
            if math.isfinite(x):
                x0, x1 = min(x0, x), max(x1, x)
            if math.isfinite(y):
                y0, y1 = min(y0, y), max(y1, y)
    sx = _span(x0, x1, 0.05 * max(abs(x1), 1e-9) if not log_x else 0.02)
    sy = _span(y0, y1, 0.02 * max(abs(y1), 1e-9))
    xl = (x0 - pad * sx, x1 + pad * sx)
    yl = (y0 - pad * sy, y1 + pad * sy)
    outside = []
    for e, x, y in ex:
        if e.label in inside or not (math.isfinite(x) or math.isfinite(y)):
            continue
        side = ("below" if math.isfinite(y) and y < yl[0] else "above" if math.isfinite(y) and y > yl[1]
                else "left" if math.isfinite(x) and x < xl[0] else "right" if math.isfinite(x) and x > xl[1] else "")
        if not side:  # within the limits after all (the padding took it in)
            inside.append(e.label)
            continue
        at_x = float(np.clip(x, *xl)) if math.isfinite(x) else 0.5 * (xl[0] + xl[1])
        at_y = float(np.clip(y, *yl)) if math.isfinite(y) else 0.5 * (yl[0] + yl[1])
        outside.append(OffView(e.label, e.x, e.y, gx(at_x), at_y, side))
    return View((gx(xl[0]), gx(xl[1])), (float(yl[0]), float(yl[1])), tuple(inside), tuple(outside))
