"""Everything the outputs show, computed from a study's storage into plain tables (no drawing here)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixaq.simulator import get_arch
from mixaq.simulator._cost import COST_COLUMNS
from mixaq.core._errors import MixaqError

from mixaq.search.space._accuracy import SEGM_METRICS
from mixaq.search.space._cost import CostModel
from mixaq.search.records._analytics import hypervolume_table, nearest_infeasible
from mixaq.search.space._objectives import hypervolume_reference, oriented
from mixaq.search.space._pareto import first_of_duplicates, pareto_mask
from mixaq.search.space._settings import BASELINE_PREFIX, CONTEXT_ATTR, SETTINGS_ATTR, SweepSettings
from mixaq.search.space._space import DesignPoint
from mixaq.search.study._study import is_feasible, on_front_eligible, trial_info

__all__ = ["StudyRecord", "build_record", "pick_front_point", "pick_position"]

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
    # One row per (completed trial, hardware point): the points fronts and hypervolumes are taken
    # over (a fixed-spec study: one per completed trial).
    points: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    hypervolume: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)  # search.records._analytics
    hv_reference: tuple[float, ...] = ()  # the hypervolume's reference point, one value per objective
    nearest_infeasible: dict[str, Any] | None = None  # search.records._analytics.nearest_infeasible
    chosen_hw: int | None = None  # co-exploration: the chosen point's hardware (grid index)
    hw_space: Any = None  # co-exploration: search.hardware._hw_space.HardwareSpace

    @property
    def cost_kind(self) -> str:
        return self.settings.cost

    @property
    def map_floor(self) -> float | None:
        drop = self.settings.max_map_drop
        return None if drop is None else self.reference_ap - drop


def _trial_rows(study: Any, settings: SweepSettings) -> pd.DataFrame:
    kind, objectives = settings.cost, settings.objective_specs
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = trial_info(t)
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, **a}
        if t.values is not None:
            row.update({o.column: v for o, v in zip(objectives, t.values)})
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
        return pd.DataFrame(columns=list(dict.fromkeys([*_TRIAL_COLUMNS, *(o.column for o in objectives)])))
    df = pd.DataFrame(rows)
    for col in _TRIAL_COLUMNS:
        if col not in df.columns:
            df[col] = math.nan
    done = (df["state"] == "COMPLETE").to_numpy()
    values = oriented(df[[o.column for o in objectives]].to_numpy(float), objectives)
    keys = df["config_key"].to_numpy(object)
    eligible = done & on_front_eligible(df)
    df["on_front"] = first_of_duplicates(pareto_mask(values, eligible & df["feasible"].to_numpy(bool)), keys)
    # The front ignoring --max-map-drop/--min-speedup: what the constraints cut away.
    df["on_front_unconstrained"] = first_of_duplicates(pareto_mask(values, eligible), keys)
    # Mask AP columns only where the model has masks (a box-only study keeps its columns).
    no_masks = [c for c in SEGM_METRICS if c in df and pd.to_numeric(df[c], errors="coerce").isna().all()]
    extra = [c for c in df.columns if c not in _TRIAL_COLUMNS and c not in ("point", "constraints", "worker",
                                                                         "low_fraction", "pruned_fraction",
                                                                         "hw_front", *no_masks)]
    return df[[*_TRIAL_COLUMNS, *sorted(extra)]].sort_values("number").reset_index(drop=True)


def _baseline_rows(study: Any, settings: SweepSettings) -> pd.DataFrame:
    kind = settings.cost
    # Objective columns beyond the standard ones (a default study's baselines.csv keeps its columns).
    extra = [o.column for o in settings.objective_specs
             if o.column not in ("ap", "ap50", "speedup", *(f"speedup_{k}" for k in COST_COLUMNS))]
    rows = []
    for name, v in sorted(study.user_attrs.items()):
        if not name.startswith(BASELINE_PREFIX):
            continue
        rows.append({"name": v["name"], "label": v["label"], "ap": v.get("ap", math.nan), "ap50": v.get("ap50"),
                     "speedup": v.get(f"speedup_{kind}"), **{f"speedup_{k}": v.get(f"speedup_{k}") for k in COST_COLUMNS},
                     "of_trial": v.get("of_trial"), **{c: v.get(c) for c in extra}})
    cols = ["name", "label", "ap", "ap50", "speedup", *(f"speedup_{k}" for k in COST_COLUMNS), "of_trial", *extra]
    return pd.DataFrame(rows, columns=cols).astype({"speedup": float, "ap": float, **{c: float for c in extra}})


def pick_front_point(front: pd.DataFrame, settings: SweepSettings) -> int | None:
    """The trial number of the front point whose breakdown is shown (`pick_position`)."""
    position = pick_position(front, settings)
    return None if position is None else int(front.iloc[position]["number"])


def _hw_index_of(trials: pd.DataFrame, number: int | None) -> int | None:
    hit = trials.loc[trials["number"] == number, "hw_index"] if "hw_index" in trials else pd.Series(dtype=float)
    return None if hit.empty or pd.isna(hit.iloc[0]) else int(hit.iloc[0])


def pick_position(front: pd.DataFrame, settings: SweepSettings) -> int | None:
    """Row position in `front` of the point whose breakdown is shown: with --max-map-drop the best
    feasible point along `settings.x_column` (the fastest, for the default objectives; the front is
    feasible-only); otherwise the knee: every objective scaled to [0, 1] over the front (1 = best),
    the point with the largest sum (two objectives: the farthest from the line joining the ends)."""
    if front.empty:
        return None
    objectives = settings.objective_specs
    x_col = settings.x_column
    x_sign = next((o.sign for o in objectives if o.column == x_col), 1.0)
    f = front.sort_values(x_col)
    if settings.max_map_drop is not None or len(f) < 3:
        return front.index.get_loc(f.index[-1 if x_sign > 0 else 0])
    # Objectives in the default order of the original 2-D knee: the x column first, accuracy second.
    order = sorted(objectives, key=lambda o: o.source == "accuracy")
    scaled = []
    for o in order:
        v = o.sign * f[x_col if o.column == f"speedup_{settings.cost}" else o.column].to_numpy(float)
        scaled.append((v - v.min()) / max(np.ptp(v), 1e-12))
    # The ends of a 2-D front are (0, 1) and (1, 0); the knee maximizes the sum of scaled objectives.
    return front.index.get_loc(f.index[int(np.argmax(np.sum(scaled, axis=0)))])


def _breakdown(settings: SweepSettings, context: dict[str, Any], trials: pd.DataFrame,
               chosen: int | None, study: Any, spec: Any = None) -> pd.DataFrame:
    """Per-layer cost of the chosen trial vs the reference, on `spec` (default: the study's spec)."""
    if chosen is None:
        return pd.DataFrame(columns=["group", "reference", "chosen"])
    arch = get_arch(context["arch"])
    cost = CostModel.load(settings.spec if spec is None else spec, arch, context["image_hw"],
                          settings.space.high_act_bits, settings.space.weight_bits)
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
    trials = _trial_rows(study, settings)
    x_col = settings.x_column
    front = trials[trials["on_front"]].sort_values(x_col).reset_index(drop=True)
    front_all = trials[trials["on_front_unconstrained"]].sort_values(x_col).reset_index(drop=True)
    baselines = _baseline_rows(study, settings)

    def ap_of(name: str) -> float:
        hit = baselines.loc[baselines["name"] == name, "ap"]
        return float(hit.iloc[0]) if len(hit) else math.nan

    objectives = settings.objective_specs
    done = trials[trials["state"] == "COMPLETE"]
    chosen_spec = chosen_hw = hw_space = None
    if settings.hw_space is not None and context:
        from mixaq.search.records._record_hw import hardware_record

        hwr = hardware_record(study, settings, context, done)
        points, front, front_all, reference = hwr.points, hwr.front, hwr.front_unconstrained, hwr.reference
        trials["on_front"] = trials["number"].isin(front["number"])
        trials["on_front_unconstrained"] = trials["number"].isin(front_all["number"])
        position = pick_position(front, settings) if pick_trial is None else None
        chosen_hw = None if position is None else int(front.iloc[position]["hw_index"])
        if chosen_hw is None:
            chosen_hw = _hw_index_of(trials, pick_trial)
        chosen_spec, hw_space = hwr.spec_of(chosen_hw), hwr.space
    else:
        points = done[["number", "feasible", "config_key", "speedup", *dict.fromkeys(o.column for o in objectives)]]
        points = points.loc[:, ~points.columns.duplicated()].copy()
        points["feasible"] = points["feasible"].astype(bool) & on_front_eligible(done)  # hypervolume: front points only
        reference = None
        position = pick_position(front, settings) if pick_trial is None else None
    if pick_trial is not None:
        ok = trials[(trials["number"] == pick_trial) & (trials["state"] == "COMPLETE")]
        if ok.empty:
            raise MixaqError(f"--pick {pick_trial}: no completed trial with that number in {study.study_name!r}")
        chosen = pick_trial
    else:
        chosen = None if position is None else int(front.iloc[position]["number"])
    breakdown = _breakdown(settings, context, trials, chosen, study, chosen_spec)
    if reference is None:
        reference = _hv_reference(settings, context)
    hv = hypervolume_table(points, settings, reference)
    records = [trial_info(t) | {"number": t.number} for t in study.get_trials(deepcopy=False)
               if t.state.name == "COMPLETE"]
    nearest = nearest_infeasible(records, settings, ap_of("uniform_high"))
    return StudyRecord(study.study_name, settings, context, trials, front, front_all, baselines, ap_of("uniform_high"),
                       ap_of("float"), chosen, breakdown, points.reset_index(drop=True), hv,
                       tuple(float(r) for r in reference), nearest, chosen_hw, hw_space)


def _hv_reference(settings: SweepSettings, context: dict[str, Any]) -> np.ndarray:
    """The study's hypervolume reference point (`search.space._objectives.hypervolume_reference`)."""
    if not context:
        return np.zeros(len(settings.objectives))
    cost = CostModel.load(settings.spec, get_arch(context["arch"]), context["image_hw"], settings.space.high_act_bits,
                          settings.space.weight_bits)
    return hypervolume_reference(settings.objective_specs, cost.reference, cost.spec.area_mm2)
