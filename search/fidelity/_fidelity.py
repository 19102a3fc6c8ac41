"""Multi-fidelity accuracy (`--fidelity 64,500`): measure on a small image subset first, promote to
the next subset only while the proposal could still reach the front.

Every subset evaluation of n images uses the same images and the same bootstrap resamples
(`models.evaluation._bootstrap`), so differences between configurations are bootstrapped pairwise
and the subset's own difficulty cancels. A proposal is promoted unless (a) even the optimistic end of
its paired difference to uniform-high on these images misses --max-map-drop, or (b) a feasible
full-fidelity measurement at least as good in every simulated objective (for each kept hardware
point) is better on these images with 95 % confidence. The cache keeps every level
(`mixaq.map.<key>@n`, the plain key for the full set); a configuration is reported at the highest
level it reached.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mixaq.core._util import json_ready

from mixaq.search.space._accuracy import AccuracyResult
from mixaq.search.fidelity._screen import dominated_by, measured_points
from mixaq.search.space._settings import CACHE_PREFIX
from mixaq.search.space._space import DesignPoint

if TYPE_CHECKING:
    from mixaq.search.study._study import StudyHandle

__all__ = ["accuracy_at_fidelity", "could_reach_front", "fidelity_record", "subset_reference"]

Promote = Callable[[AccuracyResult], bool]


def accuracy_at_fidelity(handle: "StudyHandle", key: str, point: DesignPoint, promote: Promote | None,
                         wait: bool = True) -> tuple[AccuracyResult, bool, int, list[AccuracyResult], int | None] | None:
    """(result at the highest fidelity reached, all from the cache, images evaluated now, the
    lower-fidelity results on the way, the image count of the result's level (None without
    --fidelity)), or None when `wait=False` and another process is measuring it."""
    levels = handle.settings.fidelity
    full = levels[-1] if levels else None
    top = handle.cached(key)
    if top is not None:
        return top, True, 0, [r for n in levels[:-1] if (r := handle.cached(f"{key}@{n}"))], full
    spent, hit, lower = 0, True, []
    if levels and promote is not None:
        for n in levels[:-1]:
            result, cached = handle.measured(f"{key}@{n}", point, n_images=n,
                                             bootstrap=handle.settings.fidelity_bootstrap)
            if not cached:
                spent, hit = spent + n, False
            lower.append(result)
            if not promote(result):
                return result, hit, spent, lower, n
    result, cached = handle.measured(key, point, wait=wait)
    if result is None:
        return None
    return result, hit and cached, spent + (0 if cached else (full or result.n_images)), lower, full


def fidelity_record(handle: "StudyHandle", record: dict[str, Any], result: AccuracyResult, level: int, spent: int,
                    lower: list[AccuracyResult]) -> None:
    """Add the --fidelity columns to a trial record: `fidelity` (image count of the reported mAP),
    `fidelity_top`, `images_evaluated`, and `ap_at_<n>` / `ap_ci_low_at_<n>` / `ap_ci_high_at_<n>`."""
    record.update(fidelity=level, fidelity_top=level == handle.settings.fidelity[-1], images_evaluated=spent)
    if not record["fidelity_top"]:
        # Stopped early: report the full-set estimate the paired comparison gives (uniform-high's
        # full mAP plus the difference on these images), not the subset's own, easier or harder,
        # level; the raw subset value stays in ap_at_<n>. Never on the front (`on_front_eligible`).
        reference = subset_reference(handle, level)
        if reference is not None and "ap" in record:
            record["ap"] = handle.reference_ap() + (result.ap - reference.ap)
    record["images_evaluated"] += handle.take_reference_images()
    for r in lower:  # every lower-fidelity estimate this configuration has, with its interval
        record.update({f"ap_at_{r.n_images}": r.ap, f"ap_ci_low_at_{r.n_images}": json_ready(r.ap_ci_low),
                       f"ap_ci_high_at_{r.n_images}": json_ready(r.ap_ci_high)})


def _gap(other: AccuracyResult, mine: AccuracyResult, q: float) -> float:
    """Percentile q of the paired bootstrap of other.ap - mine.ap (the point estimate bounds it)."""
    d = np.asarray(other.ap_boot, dtype=float) - np.asarray(mine.ap_boot, dtype=float)
    d = d[np.isfinite(d)]
    point = other.ap - mine.ap
    if not len(d):
        return point
    bound = float(np.percentile(d, q))
    return min(point, bound) if q < 50 else max(point, bound)


def could_reach_front(handle: "StudyHandle", result: AccuracyResult, candidates: dict[str, Any]) -> bool:
    """The promotion rule (module docstring); `candidates` are the proposal's simulated objective
    values (arrays over its kept hardware points with a hardware space)."""
    s = handle.settings
    if s.accuracy_column != "ap" or not result.ap_boot:
        return True  # no resamples for this metric: measure it fully
    n = result.n_images
    if s.max_map_drop is not None:
        reference = subset_reference(handle, n)
        if reference is not None and -_gap(reference, result, 2.5) < -s.max_map_drop:
            return False  # even optimistically more than --max-map-drop below uniform-high
    known = measured_points(handle.study, s.objective_specs, s.accuracy_column)
    if known.empty:
        return True
    attrs = handle.study.user_attrs
    better: dict[str, bool] = {}
    for key in known.loc[known["feasible"].to_numpy(bool), "config_key"].dropna().unique():
        cached = attrs.get(f"{CACHE_PREFIX}{key}@{n}")
        other = None if cached is None else AccuracyResult.from_dict(cached)
        better[key] = other is not None and bool(other.ap_boot) and _gap(other, result, 2.5) > 0
    beats = known["config_key"].map(lambda k: better.get(k, False)).to_numpy(bool)
    return not dominated_by(known, None, candidates, s.objective_specs, 0.0, accuracy_beats=beats)


def subset_reference(handle: "StudyHandle", n_images: int) -> AccuracyResult | None:
    """uniform-high on the first `n_images` images with bootstrap resamples (measured once, cached
    like any subset evaluation, its images charged to the trial that needed it)."""
    point = handle.baseline_points()["uniform_high"]
    key, _ = handle._key_and_costs(point)
    result, hit = handle.measured(f"{key}@{n_images}", point, n_images=n_images,
                                  bootstrap=handle.settings.fidelity_bootstrap)
    if not hit:
        handle.charge_reference_images(n_images)
    return result if result is not None and math.isfinite(result.ap) else None
