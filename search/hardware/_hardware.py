"""The hardware side of co-exploration: every point of a hardware space scored for one precision
configuration at once, and the non-dominated ones kept.

A configuration's mAP does not depend on the hardware, so a sweep measures it once and pairs it
with the whole grid: `HardwareGrid.score` costs the assignment on all H specs in one vectorized pass
(`simulator.SpecGrid`), `keep` drops points over budget and keeps the hardware points no other point
beats in every hardware-dependent objective. The sampler only ever proposes precision configurations.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mixaq.simulator import AcceleratorSpec, SpecGrid, SwinArch, WindowAssignment, spec_area
from mixaq.simulator._cost import COST_COLUMNS, TOTAL_FIELDS
from mixaq.core._errors import MixaqError

from mixaq.search.hardware._hw_space import HardwareSpace, dram_gbps, knob_cell
from mixaq.search.space._objectives import Objective, oriented
from mixaq.search.space._pareto import pareto_mask

__all__ = ["HardwareGrid", "HW_FRONT_ATTR"]

# Trial record key holding a configuration's kept hardware points (column -> list, plus "index").
HW_FRONT_ATTR = "hw_front"


@dataclass
class HardwareGrid:
    """The searched points of a hardware space, prepared for costing (built once per process)."""

    space: HardwareSpace
    seed: int
    arch: SwinArch
    image_hw: tuple[int, int]
    ref_act_bits: int
    ref_weight_bits: int
    index: np.ndarray = field(init=False)  # (H,) grid position of each point
    specs: list[AcceleratorSpec] = field(init=False, repr=False)
    area_mm2: np.ndarray = field(init=False)
    dram_gbps: np.ndarray = field(init=False)
    knobs: pd.DataFrame = field(init=False, repr=False)  # (H, knobs) knob values per point
    reference: dict[str, np.ndarray] = field(init=False, repr=False)  # uniform-high totals per point
    scored: int = 0  # hardware points scored by this process (for the points/s report)
    score_seconds: float = 0.0

    def __post_init__(self) -> None:
        idx = self.space.indices(self.seed)
        specs, rows, kept = [], [], []
        over: dict[str, float] = {}
        for i in idx:
            spec = self.space.spec(int(i))
            violations = self.space.budget_violations(spec)
            for k, v in violations.items():
                over[k] = min(over.get(k, np.inf), v)
            if violations:
                continue
            specs.append(spec)
            rows.append(self.space.point_mapping(int(i))[1])
            kept.append(int(i))
        if not specs:
            shown = ", ".join(f"{k} <= {self.space.budgets[k]:g} (smallest in the space: {v:.4g})" for k, v in over.items())
            raise MixaqError(f"hardware space {self.space.source}: no point meets the budgets ({shown})")
        self.index = np.asarray(kept)
        self.specs = specs
        self.area_mm2 = np.array([spec_area(s).total_mm2 for s in specs])
        self.dram_gbps = np.array([dram_gbps(s) for s in specs])
        self.knobs = pd.DataFrame([{k: knob_cell(v) for k, v in r.items()} for r in rows])
        self._grid = SpecGrid(specs)
        n = self.arch.num_blocks
        ref = self._grid.estimate(self.arch, self.image_hw, np.zeros((1, n)), np.zeros((1, n)), self.ref_act_bits,
                                  self.ref_act_bits, self.ref_weight_bits, unsupported="nan")
        self.reference = {k: v[:, 0] for k, v in ref.items()}
        if np.isnan(self.reference["cycles"]).all():
            raise MixaqError(f"hardware space {self.space.source}: no point runs the reference bits "
                             f"A{self.ref_act_bits}/W{self.ref_weight_bits}")

    def __len__(self) -> int:
        return len(self.specs)

    def name(self, h: int) -> str:
        return self.specs[h].name

    def score(self, assignment: WindowAssignment) -> dict[str, np.ndarray]:
        """Every cost column (H,) of `assignment` on every point, with speedups over each point's own
        uniform-high reference, `area_mm2` and `power_mw`; NaN where a point cannot run the bits."""
        start = time.perf_counter()
        out = self._grid.estimate(self.arch, self.image_hw, np.asarray([assignment.low_fraction]),
                                  np.asarray([assignment.pruned_fraction]), assignment.high_act_bits,
                                  assignment.low_act_bits, assignment.weight_bits, unsupported="nan")
        cols = {k: v[:, 0] for k, v in out.items() if k in TOTAL_FIELDS}
        with np.errstate(divide="ignore", invalid="ignore"):
            for kind, column in COST_COLUMNS.items():
                cols[f"speedup_{kind}"] = self.reference[column] / cols[column]
            cols["power_mw"] = cols["energy_pj"] / cols["latency_ms"] * 1e-6
        cols["area_mm2"] = self.area_mm2
        self.scored += len(self)
        self.score_seconds += time.perf_counter() - start
        return cols

    def keep(self, cols: dict[str, np.ndarray], objectives: Sequence[Objective], cost_kind: str,
             min_speedup: float | None) -> tuple[np.ndarray, str | None]:
        """(indices of the kept points, None) or (empty, why): points that run the bits, meet the
        power budget and --min-speedup, and that no other such point beats in every
        hardware-dependent objective."""
        ok = np.isfinite(cols["cycles"])
        if not ok.any():
            return np.zeros(0, dtype=int), "no hardware point runs these bits"
        power = self.space.budgets.get("power_mw")
        if power is not None:
            ok &= cols["power_mw"] <= power
            if not ok.any():
                return np.zeros(0, dtype=int), f"every point exceeds the power budget {power:g} mW"
        if min_speedup is not None:
            ok &= cols[f"speedup_{cost_kind}"] >= min_speedup
            if not ok.any():
                return np.zeros(0, dtype=int), "min_speedup"
        hw_obj = [o for o in objectives if o.source != "accuracy"]
        values = oriented(np.column_stack([cols[o.column] for o in hw_obj]), hw_obj)
        mask = pareto_mask(values, ok)
        return np.flatnonzero(mask), None

    @staticmethod
    def representative(cols: dict[str, np.ndarray], kept: np.ndarray, objectives: Sequence[Objective]) -> int:
        """The kept point a trial reports to the sampler: the knee of the configuration's own
        hardware front (objectives scaled to [0, 1] over the kept points, largest sum)."""
        hw_obj = [o for o in objectives if o.source != "accuracy"]
        v = oriented(np.column_stack([cols[o.column][kept] for o in hw_obj]), hw_obj)
        scaled = (v - v.min(axis=0)) / np.maximum(np.ptp(v, axis=0), 1e-12)
        return int(kept[int(np.argmax(scaled.sum(axis=1)))])

    def point_record(self, cols: dict[str, np.ndarray], h: int) -> dict[str, Any]:
        """The trial-record columns of point h: every cost column, speedups, area, power, its spec."""
        rec = {k: float(v[h]) for k, v in cols.items()}
        rec.update(spec_name=self.specs[h].name, spec_hash=self.specs[h].content_hash(), hw_index=int(self.index[h]))
        return rec

    def proposal_points(self, point: Any, costs: dict[str, Any], settings: Any
                        ) -> tuple[tuple[dict[str, Any], dict[str, np.ndarray]] | None, str | None]:
        """Score the proposal on every hardware point; ((representative's record incl. the kept
        points, kept objective values), None) or (None, why none is kept). `settings` is the
        study's `SweepSettings`."""
        hw, s = self, settings
        assignment = WindowAssignment(tuple(costs["low_fraction"]), tuple(costs["pruned_fraction"]),
                                      point.high_act_bits, point.low_act_bits, point.weight_bits)
        seconds = hw.score_seconds
        cols = hw.score(assignment)
        seconds = hw.score_seconds - seconds
        kept, why = hw.keep(cols, s.objective_specs, s.cost, s.min_speedup)
        if not len(kept):
            return None, why
        rep = hw.representative(cols, kept, s.objective_specs)
        full = hw.point_record(cols, rep)
        shown = (*COST_COLUMNS.values(), "macs", *(f"speedup_{k}" for k in COST_COLUMNS), "area_mm2", "power_mw",
                 *(o.column for o in s.objective_specs if o.source != "accuracy"), "spec_name", "spec_hash", "hw_index")
        record = {k: full[k] for k in dict.fromkeys(shown)}
        front_cols = list(dict.fromkeys([*(o.column for o in s.objective_specs if o.source != "accuracy"),
                                         f"speedup_{s.cost}", "power_mw"]))
        record[HW_FRONT_ATTR] = {"hw_index": [int(hw.index[h]) for h in kept],
                                 **{c: [float(cols[c][h]) for h in kept] for c in front_cols}}
        record["hw_points_scored"] = len(hw)
        record["hw_score_seconds"] = seconds
        candidates = {o.column: cols[o.column][kept] for o in s.objective_specs if o.source != "accuracy"}
        return (record, candidates), None
