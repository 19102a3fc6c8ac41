"""The objective vocabulary: what a sweep may optimize, in which direction, from which column.

Every part of a sweep reads the study's objective list from here: the Optuna directions, the values
an objective function returns, the dominance screen, the front of every table and plot, the knee,
the hypervolume and its reference point. Two objectives, `map` and `speedup_<--cost>`, are the
default and reproduce the original two-objective sweep exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from mixaq.simulator._cost import COST_COLUMNS, SPEEDUP_KINDS
from mixaq.core._errors import MixaqError

__all__ = ["OBJECTIVES", "Objective", "default_objectives", "hypervolume_reference", "objective_list", "oriented",
           "parse_objectives", "x_column"]

# Where a value comes from: a measured accuracy metric, the simulator's cost of the assignment on a
# spec, or the spec alone (area).
SOURCES = ("accuracy", "cost", "hardware")


@dataclass(frozen=True)
class Objective:
    name: str  # what --objectives takes
    column: str  # the trials.csv / trial record column holding its value
    direction: str  # "maximize" | "minimize"
    source: str  # accuracy | cost | hardware
    label: str  # axis label

    @property
    def sign(self) -> float:
        """+1 when maximized, -1 when minimized: `sign * value` is always "larger is better"."""
        return 1.0 if self.direction == "maximize" else -1.0


def _build() -> dict[str, Objective]:
    out = {
        "map": Objective("map", "ap", "maximize", "accuracy", "measured box mAP (COCOeval)"),
        "map_segm": Objective("map_segm", "ap_segm", "maximize", "accuracy", "measured mask mAP (COCOeval)"),
    }
    for kind in SPEEDUP_KINDS:
        out[f"speedup_{kind}"] = Objective(f"speedup_{kind}", f"speedup_{kind}", "maximize", "cost",
                                           f"simulated {kind} speedup")
    units = {"bops": "BOPs per image", "cycles": "cycles per image", "latency_ms": "latency (ms per image)",
             "energy_pj": "energy (pJ per image)", "dram_bytes": "DRAM bytes per image"}
    for column in (*COST_COLUMNS.values(), "dram_bytes"):
        out[column] = Objective(column, column, "minimize", "cost", f"simulated {units[column]}")
    out["area_mm2"] = Objective("area_mm2", "area_mm2", "minimize", "hardware", "area (mm², 45 nm)")
    return out


OBJECTIVES: dict[str, Objective] = _build()


def default_objectives(cost: str) -> tuple[str, ...]:
    """The original sweep: measured mAP and the simulated `cost` speedup, both maximized."""
    return ("map", f"speedup_{cost}")


def parse_objectives(text: str | Iterable[str]) -> tuple[str, ...]:
    """`map,latency_ms,area_mm2` -> names; unknown or repeated names and fewer than two are one-line errors."""
    names = tuple(n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip())
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise MixaqError(f"--objectives: unknown {', '.join(unknown)} (choose from {', '.join(OBJECTIVES)})")
    if len(set(names)) != len(names):
        raise MixaqError(f"--objectives: {', '.join(names)} names an objective twice")
    if len(names) < 2:
        raise MixaqError(f"--objectives needs at least two objectives, got {', '.join(names) or 'none'}")
    return names


def objective_list(names: Sequence[str]) -> tuple[Objective, ...]:
    return tuple(OBJECTIVES[n] for n in names)


def oriented(values: Any, objectives: Sequence[Objective]) -> np.ndarray:
    """(P, M) objective values -> all-maximized form (minimized columns negated) for `pareto_mask`."""
    v = np.asarray(values, dtype=np.float64)
    return v * np.array([o.sign for o in objectives])


def x_column(objectives: Sequence[Objective], cost: str) -> str:
    """The column plots draw across and fronts are sorted by: the first objective that is not an
    accuracy metric (`speedup`, the study's --cost speedup, when that is it)."""
    first = next((o for o in objectives if o.source != "accuracy"), objectives[-1])
    return "speedup" if first.column == f"speedup_{cost}" else first.column


def hypervolume_reference(objectives: Sequence[Objective], reference_costs: Mapping[str, float],
                          area_max_mm2: float) -> np.ndarray:
    """The fixed reference point of a study's hypervolume, per objective, in its own units:
    accuracy 0; speedups 1 (no gain over the uniform-high reference); raw costs the uniform-high
    reference's cost (the largest over a hardware space); area 1.1 x the largest area searched."""
    ref = []
    for o in objectives:
        if o.source == "accuracy":
            ref.append(0.0)
        elif o.column.startswith("speedup_"):
            ref.append(1.0)
        elif o.column == "area_mm2":
            ref.append(1.1 * area_max_mm2)
        else:
            ref.append(float(reference_costs[o.column]))
    return np.asarray(ref, dtype=np.float64)
