"""The one result type of an evaluation (`EvalResult`) and the metric names, torch-free: the evaluator
returns it, a sweep stores it in its study (`to_dict` / `from_dict`) and the synthetic stand-in builds it."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from mixaq.simulator import WindowAssignment

__all__ = ["BOX_METRICS", "SEGM_METRICS", "METRICS", "EvalResult", "assignment_to_dict", "assignment_from_dict"]

# COCOeval's first six box stats (0-1; -1 where a size range has no ground truth).
BOX_METRICS: tuple[str, ...] = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")
# Mask AP (COCOeval segm) of the families with masks; NaN where there is none.
SEGM_METRICS: tuple[str, ...] = tuple(f"{m}_segm" for m in BOX_METRICS)
METRICS: tuple[str, ...] = BOX_METRICS + SEGM_METRICS


def assignment_to_dict(a: WindowAssignment) -> dict[str, Any]:
    return {"low_fraction": list(a.low_fraction), "pruned_fraction": list(a.pruned_fraction),
            "high_act_bits": a.high_act_bits, "low_act_bits": a.low_act_bits, "weight_bits": a.weight_bits}


def assignment_from_dict(d: Mapping[str, Any]) -> WindowAssignment:
    return WindowAssignment(tuple(d["low_fraction"]), tuple(d["pruned_fraction"]), d["high_act_bits"],
                            d["low_act_bits"], d["weight_bits"], source="recorded")


@dataclass(frozen=True)
class EvalResult:
    """COCOeval box stats (0-1; -1 where a size range has no ground truth) and what ran; mask stats
    (`ap_segm`, ...) for families with masks on data with segmentations, NaN otherwise."""

    ap: float
    ap50: float = math.nan
    ap75: float = math.nan
    ap_small: float = math.nan
    ap_medium: float = math.nan
    ap_large: float = math.nan
    ap_segm: float = math.nan
    ap50_segm: float = math.nan
    ap75_segm: float = math.nan
    ap_small_segm: float = math.nan
    ap_medium_segm: float = math.nan
    ap_large_segm: float = math.nan
    assignment: WindowAssignment | None = None  # per-block window fractions the model recorded, with the bits
    n_images: int = 0
    seconds: float = 0.0
    # 95 % bootstrap interval of `ap` over the evaluated images (evaluate(..., bootstrap=B)); NaN otherwise.
    ap_ci_low: float = math.nan
    ap_ci_high: float = math.nan
    # AP on each bootstrap resample of the images; equal-sized evaluations share their resamples, so
    # differences between configurations are paired.
    ap_boot: tuple[float, ...] = ()
    # COCO results-format detections (bbox xywh, category ids of the annotation file, score, RLE
    # segmentation), kept only when `evaluate(..., keep_detections=True)`; never stored.
    detections: tuple | None = field(default=None, compare=False, repr=False)

    def stats(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in BOX_METRICS}

    def segm_stats(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SEGM_METRICS}

    @property
    def has_segm(self) -> bool:
        return not math.isnan(self.ap_segm)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a study's storage (no detections)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("assignment", "detections")}
        d["assignment"] = None if self.assignment is None else assignment_to_dict(self.assignment)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvalResult":
        kw = dict(d)
        kw["assignment"] = None if kw.get("assignment") is None else assignment_from_dict(kw["assignment"])
        kw["ap_boot"] = tuple(float("nan") if v is None else float(v) for v in kw.get("ap_boot") or ())
        return cls(**kw)
