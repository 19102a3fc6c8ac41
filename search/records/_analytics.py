"""Pareto analytics of a study as plain tables: hypervolume after every completed trial, and the
nearest infeasible trial when nothing is feasible."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mixaq.search.space._hypervolume import hypervolume_history
from mixaq.search.space._settings import SweepSettings

__all__ = ["constraint_bounds", "fidelity_summary", "hardware_summary", "hypervolume_table", "nearest_infeasible"]


def hypervolume_table(points: pd.DataFrame, settings: SweepSettings, reference: np.ndarray) -> pd.DataFrame:
    """One row per completed trial (by trial number): the feasible front's hypervolume once that
    trial's points are in, with the reference point as `ref_<column>` columns.

    `points` holds one row per (completed trial, hardware point) with `number`, `feasible` and the
    objective columns; a fixed-spec study has one point per trial.
    """
    objectives = settings.objective_specs
    ref_cols = {f"ref_{o.column}": float(r) for o, r in zip(objectives, reference)}
    columns = ["number", "completed", "hypervolume", *ref_cols]
    if points.empty:
        return pd.DataFrame(columns=columns)
    p = points.sort_values("number", kind="stable")
    hv = hypervolume_history(p[[o.column for o in objectives]].to_numpy(float), p["feasible"].to_numpy(bool),
                             objectives, reference, group=p["number"].to_numpy())
    numbers = list(dict.fromkeys(p["number"].tolist()))
    return pd.DataFrame({"number": numbers, "completed": np.arange(1, len(numbers) + 1), "hypervolume": hv,
                         **{k: v for k, v in ref_cols.items()}})[columns]


def constraint_bounds(settings: SweepSettings, reference_ap: float) -> list[tuple[str, float | None, str]]:
    """(name, bound, unit) of each entry of a trial's `constraints` list, None where inactive."""
    floor = None if settings.max_map_drop is None else reference_ap - settings.max_map_drop
    return [(f"--max-map-drop {settings.max_map_drop:g}" if floor is not None else "--max-map-drop", floor,
             settings.accuracy_column),
            (f"--min-speedup {settings.min_speedup:g}" if settings.min_speedup is not None else "--min-speedup",
             settings.min_speedup, f"x {settings.cost} speedup")]


def nearest_infeasible(done: list[dict[str, Any]], settings: SweepSettings, reference_ap: float) -> dict[str, Any] | None:
    """When no completed trial is feasible: the one closest to feasibility, and by how much it misses
    each constraint. `done` holds a trial record (`number`, `label`, `constraints`) per completed
    trial. Closeness is the sum over constraints of the miss relative to the bound's size (a 0.01
    mAP miss of a 0.5 floor counts as much as a 0.02x miss of a 1.0x speedup floor)."""
    from mixaq.search.study._study import is_feasible

    if not done or any(is_feasible(r) for r in done):
        return None
    bounds = constraint_bounds(settings, reference_ap)

    def score(r: dict[str, Any]) -> float:
        return sum(max(float(c), 0.0) / max(abs(b), 1e-12) for c, (_, b, _) in zip(r["constraints"], bounds)
                   if b is not None)

    best = min((r for r in done if r.get("constraints")), key=score, default=None)
    if best is None:
        return None
    misses = [{"constraint": name, "bound": b, "miss": max(float(c), 0.0), "unit": unit}
              for c, (name, b, unit) in zip(best["constraints"], bounds) if b is not None]
    text = (f"no feasible trial; the nearest is trial {int(best['number'])} ({best.get('label')}): "
            + ", ".join(f"misses {m['constraint']} by {m['miss']:.4g} {m['unit']}" for m in misses if m["miss"] > 0))
    return {"number": int(best["number"]), "label": best.get("label"), "misses": misses, "text": text}


def hardware_summary(trials: pd.DataFrame) -> dict[str, Any] | None:
    """Co-exploration bookkeeping: hardware points per proposal, points scored per second, and
    hardware points scored per mAP evaluation (every proposal is scored; only evaluated ones pay)."""
    if "hw_points_scored" not in trials:
        return None
    scored = trials.dropna(subset=["hw_points_scored"])
    evaluations = int((trials["outcome"] == "evaluated").sum())
    seconds = float(scored["hw_score_seconds"].sum()) if "hw_score_seconds" in scored else math.nan
    total = float(scored["hw_points_scored"].sum())
    return {"points": int(scored["hw_points_scored"].max()) if len(scored) else 0, "proposals": len(scored),
            "evaluations": evaluations, "points_per_s": total / seconds if seconds else math.nan,
            "points_per_evaluation": total / evaluations if evaluations else math.nan}


def fidelity_summary(trials: pd.DataFrame, levels: tuple[int, ...]) -> dict[str, Any] | None:
    """--fidelity bookkeeping: evaluated proposals, how many reached the full set, images spent."""
    if not levels or "fidelity_top" not in trials:
        return None
    evaluated = trials[trials["outcome"] == "evaluated"]
    full = int(evaluated["fidelity_top"].astype(bool).sum())
    return {"levels": ",".join(map(str, levels)), "evaluations": len(evaluated), "full": full,
            "stopped": len(evaluated) - full, "images": int(trials["images_evaluated"].fillna(0).sum())}
