"""The record of a co-exploration study: every completed trial's kept hardware points as rows, and
the front over (precision configuration, hardware point) pairs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixaq.simulator import get_arch

from mixaq.search.hardware._hardware import HW_FRONT_ATTR, HardwareGrid
from mixaq.search.hardware._hw_space import HardwareSpace, knob_cell
from mixaq.search.space._objectives import hypervolume_reference, oriented
from mixaq.search.space._pareto import first_of_duplicates, pareto_mask
from mixaq.search.space._settings import SweepSettings

__all__ = ["HardwareRecord", "hardware_record", "POINT_COLUMNS"]

POINT_COLUMNS = ("number", "hw_index", "spec_name", "spec_hash", "feasible", "config_key", "label")


@dataclass(frozen=True)
class HardwareRecord:
    space: HardwareSpace
    points: pd.DataFrame = field(repr=False)  # one row per (completed trial, kept hardware point)
    front: pd.DataFrame = field(repr=False)  # feasible non-dominated points, with knob columns
    front_unconstrained: pd.DataFrame = field(repr=False)
    reference: np.ndarray  # hypervolume reference point

    def spec_of(self, hw_index: int | None) -> Any:
        return None if hw_index is None else self.space.spec(hw_index)


def hardware_record(study: Any, settings: SweepSettings, context: dict[str, Any], done: pd.DataFrame) -> HardwareRecord:
    """Expand each completed trial's kept hardware points (trial record `hw_front`) into rows."""
    from optuna.trial import TrialState

    from mixaq.search.study._study import is_feasible, trial_info

    space = HardwareSpace.from_dict(settings.hw_space, source=f"study {study.study_name!r}")
    objectives = settings.objective_specs
    accuracy_cols = [o.column for o in objectives if o.source == "accuracy"]
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        info = trial_info(t)
        hw = info.get(HW_FRONT_ATTR) or {}
        for i, hw_index in enumerate(hw.get("hw_index", ())):
            row = {"number": t.number, "hw_index": int(hw_index), "spec_name": f"{space.name}-{int(hw_index)}",
                   # --fidelity estimates (stopped below the full set) never make the front
                   "feasible": is_feasible(info) and info.get("fidelity_top", True) is not False,
                   "config_key": info.get("config_key"), "label": info.get("label"),
                   **{c: info.get(c) for c in ("ap", *accuracy_cols)}}
            row.update({c: v[i] for c, v in hw.items() if c != "hw_index"})
            rows.append(row)
    columns = list(dict.fromkeys([*POINT_COLUMNS, "ap", *(o.column for o in objectives)]))
    points = pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
    if len(points):
        hashes = {i: space.spec(i).content_hash() for i in points["hw_index"].unique()}
        points["spec_hash"] = points["hw_index"].map(hashes)
        knobs = pd.DataFrame([space.point_mapping(i)[1] for i in points["hw_index"]]).map(knob_cell)
        points = pd.concat([points.reset_index(drop=True), knobs.add_prefix("hw.")], axis=1)
        if f"speedup_{settings.cost}" in points:
            points["speedup"] = points[f"speedup_{settings.cost}"]
        values = oriented(points[[o.column for o in objectives]].to_numpy(float), objectives)
        keys = (points["config_key"].astype(str) + "@" + points["hw_index"].astype(str)).to_numpy(object)
        points["on_front"] = first_of_duplicates(pareto_mask(values, points["feasible"].to_numpy(bool)), keys)
        points["on_front_unconstrained"] = first_of_duplicates(pareto_mask(values), keys)
    else:
        points["on_front"] = points["on_front_unconstrained"] = pd.Series(dtype=bool)
    lead = [c for c in (*POINT_COLUMNS, *(o.column for o in objectives)) if c in points]
    points = points[[*dict.fromkeys([*lead, *points.columns])]]
    x_col = settings.x_column if settings.x_column in points else objectives[-1].column
    front = points[points["on_front"]].sort_values(x_col).reset_index(drop=True)
    front_all = points[points["on_front_unconstrained"]].sort_values(x_col).reset_index(drop=True)
    # The reference point: uniform-high costs on the slowest point, 1.1 x the largest area.
    grid = HardwareGrid(space, settings.seed, get_arch(context["arch"]), tuple(context["image_hw"]),
                        settings.space.high_act_bits, settings.space.weight_bits)
    worst = {k: float(np.nanmax(v)) for k, v in grid.reference.items()}
    reference = hypervolume_reference(objectives, worst, float(grid.area_mm2.max()))
    return HardwareRecord(space, points.reset_index(drop=True), front, front_all, reference)
