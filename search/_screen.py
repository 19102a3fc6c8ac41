"""Cheap before expensive: reject a proposal that measured neighbours show cannot reach the front."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mixaq.simulator._cost import COST_COLUMNS

from mixaq.search._settings import BASELINE_PREFIX
from mixaq.search._space import DesignPoint

__all__ = ["REJECTED_DOMINATED", "REJECTED_MAP", "dominance_verdict", "measured_points"]

REJECTED_DOMINATED, REJECTED_MAP = "rejected_dominated", "rejected_map_bound"


def dominance_verdict(known: pd.DataFrame, point: DesignPoint, low: np.ndarray, pruned: np.ndarray, speed: float,
                      cost_kind: str, tolerance: float, map_floor: float | None) -> str | None:
    """Why `point` (per-block low/pruned window fractions, simulated `speed`) need not be measured,
    or None.

    Assumption (monotone accuracy): demoting more windows (per block, pruned and low+pruned shares
    both >=) at the same bits and strategy does not raise mAP. Then the smallest measured mAP among
    points in `known` that demote no more windows bounds the point's mAP from above. If a feasible
    measured point is at least as fast and beats that bound by `tolerance`, the point is dominated;
    if the bound is already below `map_floor` (--max-map-drop), it cannot be feasible.
    """
    if known.empty:
        return None
    no_low = known["low_sum"].to_numpy() == 0
    undemoted = no_low & (known["pruned_sum"].to_numpy() == 0)
    same_bits = ((known["high"] == point.high_act_bits) & (known["weight"] == point.weight_bits)).to_numpy()
    # Low bits and strategy only matter for points that have low / demoted windows.
    same_low_bits = no_low | (known["low_bits"] == point.low_act_bits).to_numpy()
    same_strategy = undemoted | (known["strategy"] == point.strategy).to_numpy()
    kp = np.stack(known["pruned"].to_numpy())  # (K, blocks)
    kd = np.stack(known["demoted"].to_numpy())  # (K, blocks) low + pruned
    below = (kp <= pruned[None] + 1e-9).all(axis=1) & (kd <= (low + pruned)[None] + 1e-9).all(axis=1)
    comparable = same_bits & same_low_bits & same_strategy & below
    if not comparable.any():
        return None
    ap = known["ap"].to_numpy(float)
    bound = float(ap[comparable].min())
    if map_floor is not None and bound + tolerance < map_floor:
        return REJECTED_MAP
    beats = known["feasible"].to_numpy(bool) & (known[f"speedup_{cost_kind}"].to_numpy(float) >= speed) & \
        (ap >= bound + tolerance)
    return REJECTED_DOMINATED if beats.any() else None


def measured_points(study: Any) -> pd.DataFrame:
    """Every measured ratio-mode point (COMPLETE trials and baselines) as the arrays the screen compares.

    Baselines bound mAP from above but are not front points (feasible=False)."""
    from optuna.trial import TrialState

    from mixaq.search._study import is_feasible, trial_info

    entries = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = trial_info(t)
        if "low_fraction" in a and "point" in a:
            entries.append({**a, "ap": t.values[0], "feasible": is_feasible(a)})
    for name, v in study.user_attrs.items():
        if name.startswith(BASELINE_PREFIX) and v.get("low_fraction") is not None:
            entries.append({**v, "feasible": False})
    rows = []
    for e in entries:
        p = e["point"]
        if p.get("mode", "ratio") != "ratio":
            continue
        low, pruned = np.asarray(e["low_fraction"], float), np.asarray(e["pruned_fraction"], float)
        rows.append({"high": p["high_act_bits"], "low_bits": p["low_act_bits"], "weight": p["weight_bits"],
                     "strategy": p["strategy"], "ap": float(e["ap"]), "feasible": bool(e["feasible"]),
                     "pruned": pruned, "demoted": low + pruned, "low_sum": float(low.sum()),
                     "pruned_sum": float(pruned.sum()),
                     **{f"speedup_{k}": float(e.get(f"speedup_{k}") or math.nan) for k in COST_COLUMNS}})
    return pd.DataFrame(rows)
