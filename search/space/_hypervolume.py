"""Hypervolume of a study's feasible front after every completed trial (Optuna's exact routine).

The hypervolume is the volume of objective space a front dominates, bounded by a reference point
fixed per study (`search.space._objectives.hypervolume_reference`), so values after different trials,
and of studies with the same objectives and reference, compare. Points that do not strictly beat
the reference in every objective add nothing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mixaq.search.space._objectives import Objective, oriented
from mixaq.search.space._pareto import pareto_mask

__all__ = ["hypervolume", "hypervolume_history"]


def hypervolume(values: np.ndarray, objectives: Sequence[Objective], reference: np.ndarray) -> float:
    """Hypervolume of the points `values` (P, M), in the objectives' own units and directions,
    against `reference` (M,) (`optuna._hypervolume.compute_hypervolume`, WFG for 3+ objectives)."""
    from optuna._hypervolume import compute_hypervolume

    v = oriented(np.atleast_2d(np.asarray(values, dtype=np.float64)), objectives)
    ref = oriented(np.asarray(reference, dtype=np.float64)[None], objectives)[0]
    keep = np.isfinite(v).all(axis=1) & (v > ref).all(axis=1)
    if not keep.any():
        return 0.0
    # Optuna minimizes: negate the all-maximized form.
    return float(compute_hypervolume(-v[keep], -ref))


def hypervolume_history(values: np.ndarray, feasible: np.ndarray, objectives: Sequence[Objective],
                        reference: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """Hypervolume of the feasible front after each step, (S,) for `values` (P, M) in step order.

    Rows sharing a `group` id (one completed trial's hardware points) enter together: entry s is the
    hypervolume after every row of the first s+1 groups. It only recomputes when a step adds a point
    to the front, and can only grow: a larger set dominates at least as much.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.asarray(feasible, dtype=bool) & np.isfinite(v).all(axis=1)
    groups = np.arange(len(v)) if group is None else np.asarray(group)
    order = list(dict.fromkeys(groups.tolist()))
    out = np.zeros(len(order))
    front = np.zeros((0, v.shape[1]))
    current = 0.0
    for s, g in enumerate(order):
        new = v[(groups == g) & ok]
        if len(new):
            candidate = np.vstack([front, new])
            mask = pareto_mask(oriented(candidate, objectives))
            if mask[len(front):].any():  # a new point joined the front
                front = candidate[mask]
                current = hypervolume(front, objectives, reference)
        out[s] = current
    return out
