"""The hypervolume's reference point: the documented default and the user's `--hv-ref` overrides.

Default (per objective, in its own units): accuracy = the --max-map-drop floor (uniform-high's
accuracy minus the drop: the constraint's own boundary, so every feasible point counts), without a
floor the uniform-low baseline's accuracy (every window at --low-act-bits), 0 where neither exists;
speedups 1 (no gain over the uniform-high reference); raw costs the
uniform-high reference's cost (the largest over a hardware space); area 1.1 x the largest area
searched. `--hv-ref map=0.5,speedup_bops=1.2` (a number, or `uniform_low` / `uniform_high` for that
baseline's value) replaces any of them.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from mixaq.core._errors import MixaqError

from mixaq.search.space._objectives import OBJECTIVES, Objective

if TYPE_CHECKING:  # pandas loads late: `--help` of sweep, plot and demo parses --hv-ref with this module
    import pandas as pd

__all__ = ["BASELINE_REFS", "parse_hv_ref", "resolve_hv_reference"]

BASELINE_REFS = ("uniform_low", "uniform_high")


def parse_hv_ref(text: str | None) -> dict[str, float | str]:
    """`map=0.5,speedup_bops=uniform_low` -> {objective name: number or baseline name}; one-line errors."""
    if not text:
        return {}
    out: dict[str, float | str] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in OBJECTIVES:
            raise MixaqError(f"--hv-ref: expected OBJECTIVE=VALUE pairs (objectives: {', '.join(OBJECTIVES)}), "
                             f"got {item!r}")
        if value in BASELINE_REFS:
            out[name] = value
            continue
        try:
            number = float(value)
        except ValueError:
            raise MixaqError(f"--hv-ref {name}: expected a number or {' / '.join(BASELINE_REFS)}, got {value!r}") from None
        if not math.isfinite(number):
            raise MixaqError(f"--hv-ref {name}: expected a finite number, got {value!r}")
        out[name] = number
    return out


def _baseline_value(baselines: pd.DataFrame, name: str, column: str) -> float:
    import pandas as pd

    hit = baselines.loc[baselines["name"] == name, column] if column in baselines else pd.Series(dtype=float)
    value = pd.to_numeric(hit, errors="coerce").dropna()
    return float(value.iloc[0]) if len(value) else math.nan


def _first_accuracy(objectives: tuple[Objective, ...]) -> int:
    """--max-map-drop bounds the first accuracy objective."""
    return next((k for k, o in enumerate(objectives) if o.source == "accuracy"), -1)


def resolve_hv_reference(objectives: tuple[Objective, ...], base: np.ndarray, baselines: pd.DataFrame,
                         overrides: Mapping[str, Any] | None = None,
                         max_map_drop: float | None = None) -> tuple[np.ndarray, str]:
    """(reference point, how it was set in words) from the simulator-side defaults `base`
    (`search.space._objectives.hypervolume_reference`), the baselines and the user's overrides."""
    overrides = dict(overrides or {})
    unknown = [n for n in overrides if n not in {o.name for o in objectives}]
    if unknown:
        raise MixaqError(f"--hv-ref names {', '.join(unknown)}, which this study does not optimize "
                         f"({', '.join(o.name for o in objectives)})")
    ref = np.asarray(base, dtype=np.float64).copy()
    words = []
    for k, o in enumerate(objectives):
        if o.name in overrides:
            value = overrides[o.name]
            if isinstance(value, str):
                got = _baseline_value(baselines, value, o.column)
                if not math.isfinite(got):
                    raise MixaqError(f"--hv-ref {o.name}={value}: the study has no {value} baseline with {o.column}")
                ref[k] = got
                words.append(f"{o.name} = {value} ({got:.4g}, --hv-ref)")
            else:
                ref[k] = float(value)
                words.append(f"{o.name} = {float(value):g} (--hv-ref)")
        elif o.source == "accuracy" and max_map_drop is not None and k == _first_accuracy(objectives) \
                and math.isfinite(high := _baseline_value(baselines, "uniform_high", o.column)):
            ref[k] = high - max_map_drop
            words.append(f"{o.name} = floor ({ref[k]:.4g}: uniform high - --max-map-drop {max_map_drop:g})")
        elif o.source == "accuracy":
            low = _baseline_value(baselines, "uniform_low", o.column)
            ref[k] = low if math.isfinite(low) else 0.0
            words.append(f"{o.name} = uniform low ({low:.4g})" if math.isfinite(low) else f"{o.name} = 0")
    return ref, "; ".join(words)
