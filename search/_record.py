"""Everything the outputs show, computed from a study's storage into plain tables (no drawing here)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixaq.simulator import get_arch
from mixaq.simulator._cost import COST_COLUMNS
from mixaq.simulator._errors import MixaqError

from mixaq.search._cost import CostModel
from mixaq.search._pareto import first_of_duplicates, pareto_mask
from mixaq.search._settings import BASELINE_PREFIX, CONTEXT_ATTR, SETTINGS_ATTR, SweepSettings
from mixaq.search._space import DesignPoint
from mixaq.search._study import is_feasible, trial_info

__all__ = ["StudyRecord", "build_record", "pick_front_point"]

_TRIAL_COLUMNS = ("number", "state", "outcome", "ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
                  "speedup", *(f"speedup_{k}" for k in COST_COLUMNS), *COST_COLUMNS.values(), "macs",
                  "feasible", "on_front", "on_front_unconstrained", "label", "config_key", "eval_seconds", "n_images", "retry_of")


@dataclass(frozen=True)
class StudyRecord:
    """A study as tables: trials, its feasible front, baselines, and the chosen point's cost breakdown."""

    study_name: str
    settings: SweepSettings
    context: dict[str, Any]
    trials: pd.DataFrame = field(repr=False)  # one row per trial, every state
    front: pd.DataFrame = field(repr=False)  # feasible non-dominated COMPLETE trials, by speedup
    front_unconstrained: pd.DataFrame = field(repr=False)  # the same ignoring constraints
    baselines: pd.DataFrame = field(repr=False)  # name, label, ap, speedup, speedup_<kind>..., of_trial
    reference_ap: float
    float_ap: float
    chosen: int | None  # trial number whose per-layer breakdown is shown
    breakdown: pd.DataFrame = field(repr=False)  # group, reference, chosen (cost column of `settings.cost`)

    @property
    def cost_kind(self) -> str:
        return self.settings.cost

    @property
    def map_floor(self) -> float | None:
        drop = self.settings.max_map_drop
        return None if drop is None else self.reference_ap - drop


def _trial_rows(study: Any, kind: str, metric: str = "ap") -> pd.DataFrame:
    """One row per trial; `ap` is the objective (box AP, or mask AP under --metric ap_segm), and
    with mask AP as the objective `ap_bbox` keeps the box AP."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = trial_info(t)
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, **a}
        if metric != "ap":
            row["ap_bbox"] = a.get("ap", math.nan)
        if t.values is not None:
            row["ap"], row["speedup"] = t.values
        else:
            row["speedup"] = a.get(f"speedup_{kind}", math.nan)
        row["feasible"] = is_feasible(a) if t.values is not None else False
        point = a.get("point")
        if point is not None:
            for name in ("low_ratios", "prune_ratios", "low_thresholds", "prune_thresholds"):
                for p, v in enumerate(point.get(name) or ()):
                    row[f"{name[:-1]}_p{p}"] = v
            row.update(high_act_bits=point["high_act_bits"], low_act_bits=point["low_act_bits"],
                       weight_bits=point["weight_bits"], strategy=point["strategy"])
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=list(_TRIAL_COLUMNS))
    df = pd.DataFrame(rows)
    for col in _TRIAL_COLUMNS:
        if col not in df.columns:
            df[col] = math.nan
    done = (df["state"] == "COMPLETE").to_numpy()
    values = df[["ap", "speedup"]].to_numpy(float)
    keys = df["config_key"].to_numpy(object)
    df["on_front"] = first_of_duplicates(pareto_mask(values, done & df["feasible"].to_numpy(bool)), keys)
    # The front ignoring --max-map-drop/--min-speedup: what the constraints cut away.
    df["on_front_unconstrained"] = first_of_duplicates(pareto_mask(values, done), keys)
    extra = [c for c in df.columns if c not in _TRIAL_COLUMNS and c not in ("point", "constraints", "worker",
                                                                         "low_fraction", "pruned_fraction")]
    return df[[*_TRIAL_COLUMNS, *sorted(extra)]].sort_values("number").reset_index(drop=True)


def _baseline_rows(study: Any, kind: str, metric: str = "ap") -> pd.DataFrame:
    rows = []
    for name, v in sorted(study.user_attrs.items()):
        if not name.startswith(BASELINE_PREFIX):
            continue
        rows.append({"name": v["name"], "label": v["label"], "ap": v.get(metric, math.nan),
                     "ap50": v.get("ap50" if metric == "ap" else "ap50_segm"),
                     "speedup": v.get(f"speedup_{kind}"), **{f"speedup_{k}": v.get(f"speedup_{k}") for k in COST_COLUMNS},
                     "of_trial": v.get("of_trial")})
    cols = ["name", "label", "ap", "ap50", "speedup", *(f"speedup_{k}" for k in COST_COLUMNS), "of_trial"]
    return pd.DataFrame(rows, columns=cols).astype({"speedup": float, "ap": float})


def pick_front_point(front: pd.DataFrame, settings: SweepSettings) -> int | None:
    """The front point whose breakdown is shown: with --max-map-drop the fastest feasible point (the
    front is feasible-only); otherwise the knee (farthest from the line joining the front's ends)."""
    if front.empty:
        return None
    f = front.sort_values("speedup")
    if settings.max_map_drop is not None or len(f) < 3:
        return int(f.iloc[-1]["number"])
    x = f["speedup"].to_numpy(float)
    y = f["ap"].to_numpy(float)
    xn = (x - x.min()) / max(np.ptp(x), 1e-12)
    yn = (y - y.min()) / max(np.ptp(y), 1e-12)
    # Ends are (0, 1) (most accurate) and (1, 0) (fastest); the knee maximizes xn + yn - 1.
    return int(f.iloc[int(np.argmax(xn + yn))]["number"])


def _breakdown(settings: SweepSettings, context: dict[str, Any], trials: pd.DataFrame,
               chosen: int | None, study: Any) -> pd.DataFrame:
    if chosen is None:
        return pd.DataFrame(columns=["group", "reference", "chosen"])
    arch = get_arch(context["arch"])
    cost = CostModel.load(settings.spec, arch, context["image_hw"], settings.space.high_act_bits,
                          settings.space.weight_bits)
    t = next(t for t in study.get_trials(deepcopy=False) if t.number == chosen)
    info = trial_info(t)
    point = DesignPoint.from_dict(info["point"])
    from mixaq.simulator import WindowAssignment

    assignment = WindowAssignment(tuple(info["low_fraction"]), tuple(info["pruned_fraction"]),
                                  point.high_act_bits, point.low_act_bits, point.weight_bits)
    ref = cost.reference_breakdown()
    mine = cost.breakdown(assignment)
    column = COST_COLUMNS[settings.cost]
    if column not in ref.columns:
        raise MixaqError(f"simulator per-op table has no {column!r} column")
    ref_g = ref.groupby(_layer_labels(ref), sort=False)[column].sum()
    mine_g = mine.groupby(_layer_labels(mine), sort=False)[column].sum()
    # Outer join: MixA-Q adds ops the reference lacks (window importance, gather/scatter).
    order = list(ref_g.index) + [g for g in mine_g.index if g not in ref_g.index]
    out = pd.DataFrame({"reference": ref_g.reindex(order), "chosen": mine_g.reindex(order)}).fillna(0.0)
    out.index.name = "group"
    return out.reset_index()


def _layer_labels(per_op: pd.DataFrame) -> pd.Series:
    """Per-layer = per Swin block (both branches summed); stage-level ops (patch embedding, merging,
    importance scoring) keep their op name."""
    for name in ("stage", "block", "op"):
        if name not in per_op.columns:
            raise MixaqError(f"simulator per-op table has no {name!r} column")
    block = per_op["block"].astype(int)
    in_block = "block " + block.astype(str)
    outside = "stage " + per_op["stage"].astype(int).astype(str) + " " + per_op["op"].astype(str)
    return in_block.where(block >= 0, outside).rename("group")


def build_record(study: Any, pick_trial: int | None = None) -> StudyRecord:
    if SETTINGS_ATTR not in study.user_attrs:
        raise MixaqError(f"study {study.study_name!r} holds no mixaq settings (not created by mixaq sweep)")
    settings = SweepSettings.from_dict(study.user_attrs[SETTINGS_ATTR])
    context = study.user_attrs.get(CONTEXT_ATTR, {})
    trials = _trial_rows(study, settings.cost, settings.metric)
    front = trials[trials["on_front"]].sort_values("speedup").reset_index(drop=True)
    front_all = trials[trials["on_front_unconstrained"]].sort_values("speedup").reset_index(drop=True)
    baselines = _baseline_rows(study, settings.cost, settings.metric)

    def ap_of(name: str) -> float:
        hit = baselines.loc[baselines["name"] == name, "ap"]
        return float(hit.iloc[0]) if len(hit) else math.nan

    if pick_trial is not None:
        ok = trials[(trials["number"] == pick_trial) & (trials["state"] == "COMPLETE")]
        if ok.empty:
            raise MixaqError(f"--pick {pick_trial}: no completed trial with that number in {study.study_name!r}")
        chosen = pick_trial
    else:
        chosen = pick_front_point(front, settings)
    breakdown = _breakdown(settings, context, trials, chosen, study)
    return StudyRecord(study.study_name, settings, context, trials, front, front_all, baselines, ap_of("uniform_high"),
                       ap_of("float"), chosen, breakdown)
