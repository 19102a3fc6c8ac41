"""Cheap before expensive: reject a proposal that measured neighbours show cannot reach the front."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from mixaq.search.hardware._hardware import HW_FRONT_ATTR
from mixaq.search.space._objectives import Objective
from mixaq.search.space._settings import BASELINE_PREFIX
from mixaq.search.space._space import DesignPoint

__all__ = ["REJECTED_DOMINATED", "REJECTED_MAP", "dominance_verdict", "dominated_by", "measured_points"]

REJECTED_DOMINATED, REJECTED_MAP = "rejected_dominated", "rejected_map_bound"


def dominance_verdict(known: pd.DataFrame, point: DesignPoint, low: np.ndarray, pruned: np.ndarray,
                      costs: Mapping[str, float], objectives: Sequence[Objective], tolerance: float,
                      map_floor: float | None) -> str | None:
    """Why `point` (per-block low/pruned window fractions, simulated objective values `costs` by
    column) need not be measured, or None.

    Assumption (monotone accuracy): demoting more windows (per block, pruned and low+pruned shares
    both >=) at the same bits and strategy does not raise any accuracy metric. Then the smallest
    measured value among points in `known` that demote no more windows bounds the point's accuracy
    from above. If a feasible measured point is at least as good in every simulated objective and
    beats that bound by `tolerance` in every accuracy objective, the point is dominated; if the
    bound of the constrained metric is already below `map_floor` (--max-map-drop), it cannot be
    feasible.
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
    accuracy = [o for o in objectives if o.source == "accuracy"]
    bounds = {o.column: float(known[o.column].to_numpy(float)[comparable].min()) for o in accuracy}
    constrained = known.attrs.get("accuracy_column", "ap")
    if map_floor is not None and constrained in known:
        bound = float(known[constrained].to_numpy(float)[comparable].min())
        if bound + tolerance < map_floor:
            return REJECTED_MAP
    return REJECTED_DOMINATED if dominated_by(known, bounds, costs, objectives, tolerance) else None


def dominated_by(known: pd.DataFrame, accuracy: Mapping[str, float] | None, costs: Mapping[str, Any],
                 objectives: Sequence[Objective], tolerance: float, accuracy_beats: np.ndarray | None = None) -> bool:
    """Whether a feasible point of `known` is at least as good as the proposal everywhere: accuracy
    >= `accuracy` + `tolerance` per accuracy objective (or, given, where `accuracy_beats` (J,) says
    so), and >= (oriented) in every simulated one. `costs` values may be arrays (K,): one candidate
    per hardware point the proposal keeps; the proposal is dominated only when every candidate is."""
    n_cand = max((np.size(costs[o.column]) for o in objectives if o.source != "accuracy"), default=1)
    beats = np.broadcast_to(known["feasible"].to_numpy(bool)[None], (n_cand, len(known)))
    if accuracy_beats is not None:
        beats = beats & np.asarray(accuracy_beats, dtype=bool)[None]
    for o in objectives:
        column = known[o.column].to_numpy(float)[None]  # (1, J)
        if o.source == "accuracy":
            if accuracy_beats is None:
                beats = beats & (column >= accuracy[o.column] + tolerance)
        else:
            mine = np.asarray(costs[o.column], dtype=float).reshape(-1, 1)  # (K, 1)
            beats = beats & (o.sign * column >= o.sign * mine)
    return bool(beats.any(axis=1).all())


def measured_points(study: Any, objectives: Sequence[Objective] = (), accuracy_column: str = "ap") -> pd.DataFrame:
    """Every measured ratio-mode point (COMPLETE trials and baselines) as the arrays the screen
    compares, with the columns of `objectives` (and `accuracy_column`).

    Baselines bound accuracy from above but are not front points (feasible=False)."""
    from optuna.trial import TrialState

    from mixaq.search.study._study import is_feasible, trial_info

    columns = list(dict.fromkeys([accuracy_column, *(o.column for o in objectives)]))
    entries = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = trial_info(t)
        # Lower-fidelity estimates (--fidelity) neither bound nor dominate: only full measurements.
        if "low_fraction" in a and "point" in a and a.get("fidelity_top", True):
            entries.append({**a, "feasible": is_feasible(a)})
    for name, v in study.user_attrs.items():
        if name.startswith(BASELINE_PREFIX) and v.get("low_fraction") is not None:
            entries.append({**v, "feasible": False})
    rows = []
    for e in entries:
        p = e["point"]
        if p.get("mode", "ratio") != "ratio":
            continue
        low, pruned = np.asarray(e["low_fraction"], float), np.asarray(e["pruned_fraction"], float)
        base = {"high": p["high_act_bits"], "low_bits": p["low_act_bits"], "weight": p["weight_bits"],
                "strategy": p["strategy"], "feasible": bool(e["feasible"]), "config_key": e.get("config_key"),
                "pruned": pruned, "demoted": low + pruned, "low_sum": float(low.sum()),
                "pruned_sum": float(pruned.sum())}
        hw_front = e.get(HW_FRONT_ATTR)
        if hw_front:  # co-exploration: one row per kept hardware point of the configuration
            for i in range(len(hw_front["hw_index"])):
                rows.append({**base, **{c: _number(hw_front[c][i] if c in hw_front else e.get(c)) for c in columns}})
        else:
            rows.append({**base, **{c: _number(e.get(c)) for c in columns}})
    out = pd.DataFrame(rows)
    out.attrs["accuracy_column"] = accuracy_column
    return out


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
