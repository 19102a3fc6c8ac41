"""A bootstrap interval over images for COCO box AP, from one `COCOeval.evaluate()`.

COCOeval matches detections to ground truth per (category, area range, image) in `evaluate()` and
pools images only in `accumulate()`. Resampling images with replacement therefore needs no new
matching: each resample is a weight (how often each image was drawn) on every image's detections
and ground truth, and `accumulate`'s precision/recall arithmetic is redone with weighted cumulative
sums, vectorized over the resamples. With every weight 1 it is `COCOeval.stats[0]` (tested).

The resamples depend only on the number of images and the seed, so two configurations evaluated on
the same images get the same resamples: their samples are paired, and the bootstrap of the
*difference* of their APs is a per-resample subtraction (`search.StudyHandle.could_reach_front`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["weighted_ap", "bootstrap_ap", "bootstrap_samples", "percentile_interval"]


def _category_tables(ev: Any, k0: int, max_det: int) -> tuple[np.ndarray, ...] | None:
    """Sorted (score-descending) detections of category index k0, area 'all': image index (D,),
    true / false positive flags (T, D), and non-ignored ground truth per image (I,)."""
    p = ev._paramsEval
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    evals = ev.evalImgs[k0 * n_area * n_img: k0 * n_area * n_img + n_img]  # area index 0 = "all"
    present = [(i, e) for i, e in enumerate(evals) if e is not None]
    if not present:
        return None
    npig = np.zeros(n_img)
    scores, images, dtm, dt_ig = [], [], [], []
    for i, e in present:
        npig[i] = np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
        s = np.asarray(e["dtScores"][:max_det], dtype=np.float64)
        scores.append(s)
        images.append(np.full(len(s), i))
        dtm.append(np.asarray(e["dtMatches"])[:, :max_det])
        dt_ig.append(np.asarray(e["dtIgnore"])[:, :max_det])
    scores = np.concatenate(scores)
    order = np.argsort(-scores, kind="mergesort")  # as pycocotools: stable, image order breaks ties
    matched = np.concatenate(dtm, axis=1)[:, order] != 0
    ignored = np.concatenate(dt_ig, axis=1)[:, order].astype(bool)
    return np.concatenate(images)[order], matched & ~ignored, ~matched & ~ignored, npig


def weighted_ap(ev: Any, weights: np.ndarray) -> np.ndarray:
    """AP@[.5:.95] (area all, maxDets[-1]) of an evaluated `COCOeval` for each row of image
    `weights` (B, images): (B,), NaN where no category has ground truth."""
    p = ev._paramsEval
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_boot, rec_thrs = len(w), np.asarray(ev.params.recThrs)
    n_thr, n_rec = len(p.iouThrs), len(rec_thrs)
    total, count = np.zeros(n_boot), np.zeros(n_boot)
    for k0 in range(len(p.catIds) if p.useCats else 1):
        tables = _category_tables(ev, k0, p.maxDets[-1])
        if tables is None:
            continue
        images, tps, fps, npig_img = tables
        npig = w @ npig_img  # (B,)
        valid = npig > 0
        n_det = len(images)
        if n_det == 0:
            count += valid * n_thr * n_rec  # ground truth but no detection: precision 0 everywhere
            continue
        wd = w[:, images]  # (B, D)
        tp = np.cumsum(wd[:, None, :] * tps[None], axis=2)  # (B, T, D)
        fp = np.cumsum(wd[:, None, :] * fps[None], axis=2)
        # Recall in [0, 1]; resamples without ground truth of this category are left out below.
        rc = np.where(valid[:, None, None], tp / np.where(valid, npig, 1.0)[:, None, None], 0.0)
        pr = tp / (fp + tp + np.spacing(1))
        pr = np.maximum.accumulate(pr[..., ::-1], axis=2)[..., ::-1]  # precision envelope
        # First index with recall >= each threshold, per (resample, IoU) row: exact float comparisons
        # as pycocotools (B x T searchsorted calls of microseconds each).
        rows = n_boot * n_thr
        flat_rc = rc.reshape(rows, n_det)
        idx = np.stack([np.searchsorted(row, rec_thrs, side="left") for row in flat_rc])  # (rows, R)
        inside = idx < n_det
        q = np.where(inside, np.take_along_axis(pr.reshape(rows, n_det), np.minimum(idx, n_det - 1), axis=1), 0.0)
        per = q.reshape(n_boot, n_thr * n_rec).sum(axis=1)
        total += np.where(valid, per, 0.0)
        count += valid * n_thr * n_rec
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def bootstrap_samples(ev: Any, n_boot: int, seed: int = 0) -> np.ndarray:
    """AP on `n_boot` resamples (with replacement) of the evaluated images, (n_boot,); the resamples
    depend only on (number of images, seed), so equal-sized evaluations are paired resample by resample."""
    n_img = len(ev._paramsEval.imgIds)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_img, size=(n_boot, n_img))
    weights = np.zeros((n_boot, n_img))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_img), draws.ravel()), 1.0)
    return weighted_ap(ev, weights)


def percentile_interval(samples: Any, confidence: float = 0.95) -> tuple[float, float]:
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if not len(s):
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(s, [tail, 100.0 - tail])
    return float(lo), float(hi)


def bootstrap_ap(ev: Any, n_boot: int, seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of AP over `n_boot` resamples of the evaluated images (with replacement)."""
    return percentile_interval(bootstrap_samples(ev, n_boot, seed), confidence)
