"""Simulated cost of design points on one accelerator spec, as speedups over a reference."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mixaq.simulator import SwinArch, WindowAssignment
from mixaq.simulator._cost import reference_cost, speedups

__all__ = ["CostModel"]


@dataclass(frozen=True)
class CostModel:
    """Scores design points with `simulator.estimate_batch` (thousands per second).

    Speedups are `cost(reference) / cost(point)` per kind; the reference is the uniform-high
    assignment at the reference bits (the paper's "uniform baseline").
    """

    spec: Any  # simulator.AcceleratorSpec
    arch: SwinArch
    image_hw: tuple[int, int]
    ref_act_bits: int
    ref_weight_bits: int

    @classmethod
    def load(cls, spec: str, arch: SwinArch, image_hw: Sequence[int], ref_act_bits: int,
             ref_weight_bits: int) -> "CostModel":
        from mixaq.simulator import load_spec

        loaded = load_spec(spec)
        loaded.check_bits("reference activation bits", ref_act_bits)
        loaded.check_bits("reference weight bits", ref_weight_bits)
        return cls(loaded, arch, (int(image_hw[0]), int(image_hw[1])), int(ref_act_bits), int(ref_weight_bits))

    def fractions(self, low_ratios: np.ndarray, prune_ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair ratios (A, pairs) -> per-block (low, pruned) fractions (A, blocks), exactly as the
        model counts windows (`window_counts`)."""
        from mixaq.simulator import fractions_from_pair_ratios

        return fractions_from_pair_ratios(self.arch, self.image_hw, low_ratios, prune_ratios)

    def _batch(self, low_f: np.ndarray, pruned_f: np.ndarray, high: Any, low: Any, weight: Any) -> pd.DataFrame:
        from mixaq.simulator import estimate_batch

        return estimate_batch(self.spec, self.arch, self.image_hw, low_f, pruned_f, high, low, weight)

    @property
    def reference(self) -> dict[str, float]:
        """Totals of the uniform-high reference (`simulator.reference_cost`), cached: every speedup divides by it."""
        cached = self.__dict__.get("_reference")
        if cached is None:
            cached = reference_cost(self.spec, self.arch, self.image_hw, self.ref_act_bits,
                                    self.ref_weight_bits).totals.as_dict()
            object.__setattr__(self, "_reference", cached)
        return cached

    def with_speedups(self, costs: pd.DataFrame) -> pd.DataFrame:
        out = costs.reset_index(drop=True).copy()
        for kind, values in speedups(out, self.reference).items():
            out[f"speedup_{kind}"] = values
        return out

    def score_arrays(self, high: np.ndarray, low: np.ndarray, weight: np.ndarray, low_ratios: np.ndarray,
                     prune_ratios: np.ndarray) -> pd.DataFrame:
        """Costs and speedups of A ratio-mode points given as arrays (`SearchSpace.sample_ratios`)."""
        low_f, pruned_f = self.fractions(low_ratios, prune_ratios)
        return self.with_speedups(self._batch(low_f, pruned_f, np.asarray(high), np.asarray(low), np.asarray(weight)))

    def score_assignments(self, assignments: Sequence[WindowAssignment]) -> pd.DataFrame:
        """Costs and speedups of explicit (e.g. recorded) assignments; float ones get NaN."""
        rows = pd.DataFrame(index=range(len(assignments)), dtype=float)
        costable = [i for i, a in enumerate(assignments)
                    if None not in (a.high_act_bits, a.low_act_bits, a.weight_bits)]
        if costable:
            sel = [assignments[i] for i in costable]
            scored = self.with_speedups(self._batch(
                np.asarray([a.low_fraction for a in sel], dtype=float),
                np.asarray([a.pruned_fraction for a in sel], dtype=float),
                np.asarray([a.high_act_bits for a in sel]),
                np.asarray([a.low_act_bits for a in sel]),
                np.asarray([a.weight_bits for a in sel]),
            ))
            scored.index = costable
            rows = scored.reindex(range(len(assignments)))
        return rows

    def assignment(self, high: int | None, low: int | None, weight: int | None, low_ratios: Sequence[float],
                   prune_ratios: Sequence[float]) -> WindowAssignment:
        return WindowAssignment.from_pair_ratios(self.arch, self.image_hw, list(low_ratios), list(prune_ratios),
                                                 high, low, weight)

    def breakdown(self, assignment: WindowAssignment) -> pd.DataFrame:
        """Per-op cost table (simulator.estimate(...).per_op) of one assignment."""
        from mixaq.simulator import estimate

        return estimate(self.spec, self.arch, self.image_hw, assignment).per_op

    def reference_breakdown(self) -> pd.DataFrame:
        return reference_cost(self.spec, self.arch, self.image_hw, self.ref_act_bits, self.ref_weight_bits).per_op
