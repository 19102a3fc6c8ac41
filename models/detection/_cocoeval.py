"""Batched detector inference and box mAP through pycocotools' COCOeval (the reference we trust)."""
from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from mixaq.models.detection._coco import CocoDetection

__all__ = ["predict", "coco_stats", "STAT_NAMES"]

# COCOeval.stats order for iouType="bbox".
STAT_NAMES = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")


@torch.no_grad()
def predict(model: nn.Module, dataset: CocoDetection, image_ids: Sequence[int], *, batch_size: int = 16,
            images: dict[int, torch.Tensor] | None = None, progress: bool = False) -> np.ndarray:
    """Detections as an (N, 7) array `[image_id, x, y, w, h, score, category_id]` (COCO loadRes form).

    `images` may hold preloaded tensors by image id (the evaluator decodes its images once).
    """
    from tqdm import tqdm

    model.eval()
    offset = getattr(model, "label_offset", 0)
    cat_ids = np.asarray(dataset.category_ids)
    rows = []
    ids = list(image_ids)
    for start in tqdm(range(0, len(ids), batch_size), desc="eval", disable=not progress, unit="batch"):
        chunk = ids[start:start + batch_size]
        batch = [images[i] if images is not None else dataset.load_image(i) for i in chunk]
        outputs = model(batch)
        for image_id, out in zip(chunk, outputs):
            boxes = out["boxes"].numpy().astype(np.float64)  # (K, 4) xyxy
            if not len(boxes):
                continue
            labels = out["labels"].numpy() - offset
            valid = (labels >= 0) & (labels < len(cat_ids))
            boxes, labels, scores = boxes[valid], labels[valid], out["scores"].numpy()[valid]
            block = np.empty((len(boxes), 7))
            block[:, 0] = image_id
            block[:, 1:3] = boxes[:, :2]
            block[:, 3:5] = boxes[:, 2:] - boxes[:, :2]
            block[:, 5] = scores
            block[:, 6] = cat_ids[labels]
            rows.append(block)
    return np.concatenate(rows) if rows else np.zeros((0, 7))


def coco_stats(dataset: CocoDetection, detections: np.ndarray, image_ids: Sequence[int], *,
               bootstrap: int = 0, seed: int = 0) -> dict[str, float]:
    """COCOeval bbox stats (0-1 scale; -1 where a size range has no ground truth) on `image_ids`.

    `bootstrap` > 0 adds `ap_boot` (AP on that many resamples of the images, paired across calls with
    the same number of images) and `ap_ci_low` / `ap_ci_high`, their 95 % percentile interval
    (`models.detection._bootstrap`, from the same evaluation).
    """
    from pycocotools.cocoeval import COCOeval

    from mixaq.models.detection._bootstrap import bootstrap_samples, percentile_interval

    if len(detections) == 0:
        # loadRes rejects an empty result list; no detections means zero precision everywhere
        # a size range has ground truth.
        out = {name: 0.0 for name in STAT_NAMES}
        return {**out, "ap_ci_low": 0.0, "ap_ci_high": 0.0, "ap_boot": (0.0,) * bootstrap} if bootstrap else out
    with contextlib.redirect_stdout(io.StringIO()):
        dt = dataset.coco.loadRes(detections)
        ev = COCOeval(dataset.coco, dt, iouType="bbox")
        ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    out = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats[: len(STAT_NAMES)])}
    if bootstrap:
        samples = bootstrap_samples(ev, bootstrap, seed)
        out["ap_ci_low"], out["ap_ci_high"] = percentile_interval(samples)
        out["ap_boot"] = tuple(float(v) for v in samples)
    return out
