"""Detector inference over a COCO dataset and COCOeval box / mask mAP (pycocotools, the reference we trust)."""
from __future__ import annotations

import contextlib
import io
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from mixaq.models.data._coco import CocoDetection

__all__ = ["predict", "coco_stats", "STAT_NAMES", "encode_masks", "image_loader", "ImageSource"]

# COCOeval.stats order (the first six, same for iouType "bbox" and "segm").
STAT_NAMES = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")


def image_loader(dataset: CocoDetection, inputs: str = "tensor", scale: Sequence[int] | None = None) -> Callable[[int], Any]:
    """image id -> what the model takes: a float RGB tensor in [0, 1] ("tensor") or mmdet's
    resized uint8 `PreparedImage` ("mmdet", keep-ratio rescale to `scale`)."""
    if inputs == "tensor":
        return dataset.load_image
    from mixaq.models.detection._preprocess import prepare_bgr, read_bgr

    return lambda image_id: prepare_bgr(read_bgr(dataset.image_path(image_id)), scale)


class ImageSource(torch.utils.data.Dataset):
    """(image id, model input) per index, for a DataLoader whose workers decode and resize."""

    def __init__(self, dataset: CocoDetection, image_ids: Sequence[int], inputs: str, scale: Sequence[int] | None,
                 images: dict[int, Any] | None = None) -> None:
        self.dataset, self.image_ids, self.inputs, self.scale = dataset, list(image_ids), inputs, scale
        self.images = images
        self._load: Callable[[int], Any] | None = None

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        image_id = self.image_ids[index]
        if self.images is not None:
            return image_id, self.images[image_id]
        if self._load is None:  # built lazily: a lambda does not pickle into worker processes
            self._load = image_loader(self.dataset, self.inputs, self.scale)
        return image_id, self._load(image_id)


def _collate(batch: list) -> list:
    return batch


def encode_masks(masks: torch.Tensor) -> list[dict]:
    """(K, H, W) bool -> COCO RLEs (counts as str, JSON-ready)."""
    import pycocotools.mask as mask_util

    if masks.shape[0] == 0:
        return []
    array = np.asfortranarray(masks.permute(1, 2, 0).numpy().astype(np.uint8))  # (H, W, K)
    rles = mask_util.encode(array)
    for r in rles:
        r["counts"] = r["counts"].decode("ascii")
    return rles


@torch.no_grad()
def predict(model: nn.Module, dataset: CocoDetection, image_ids: Sequence[int], *, batch_size: int = 16,
            images: dict[int, Any] | None = None, progress: bool = False, inputs: str = "tensor",
            scale: Sequence[int] | None = None, workers: int = 0, with_masks: bool = False,
            device: torch.device | str | None = None):  # noqa: ANN201 (ndarray | (ndarray, list[dict]))
    """Detections as an (N, 7) array `[image_id, x, y, w, h, score, category_id]` (COCO loadRes form);
    with `with_masks`, also the N RLE masks, row-aligned.

    `images` may hold preloaded model inputs by image id; otherwise `workers` processes decode
    (and for mmdet inputs resize) ahead of the model. Inputs go to `device` (default: the model's).
    """
    from tqdm import tqdm

    model.eval()
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    offset = getattr(model, "label_offset", 0)
    cat_ids = np.asarray(dataset.category_ids)
    rows, segms = [], []
    source = ImageSource(dataset, image_ids, inputs, scale, images)
    loader = torch.utils.data.DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=workers,
                                         collate_fn=_collate, prefetch_factor=4 if workers else None,
                                         persistent_workers=False)
    for batch in tqdm(loader, desc="eval", disable=not progress, unit="batch"):
        ids = [image_id for image_id, _ in batch]
        samples = [s.to(device, non_blocking=True) if isinstance(s, torch.Tensor) else s for _, s in batch]
        outputs = model(samples)
        for image_id, out in zip(ids, outputs):
            boxes = out["boxes"].cpu().numpy().astype(np.float64)  # (K, 4) xyxy
            if not len(boxes):
                continue
            labels = out["labels"].cpu().numpy() - offset
            valid = (labels >= 0) & (labels < len(cat_ids))
            boxes, labels, scores = boxes[valid], labels[valid], out["scores"].cpu().numpy()[valid]
            block = np.empty((len(boxes), 7))
            block[:, 0] = image_id
            block[:, 1:3] = boxes[:, :2]
            block[:, 3:5] = boxes[:, 2:] - boxes[:, :2]
            block[:, 5] = scores
            block[:, 6] = cat_ids[labels]
            rows.append(block)
            if with_masks:
                segms.extend(encode_masks(out["masks"][torch.from_numpy(valid).to(out["masks"].device)].cpu()))
    dets = np.concatenate(rows) if rows else np.zeros((0, 7))
    return (dets, segms) if with_masks else dets


def coco_stats(dataset: CocoDetection, detections: np.ndarray, image_ids: Sequence[int], iou_type: str = "bbox",
               segmentations: list[dict] | None = None, *, bootstrap: int = 0, seed: int = 0) -> dict[str, float]:
    """COCOeval stats for `iou_type` ("bbox" or "segm", with the row-aligned RLEs) on `image_ids`
    (0-1 scale; -1 where a size range has no ground truth).

    `bootstrap` > 0 adds `ap_boot` (AP on that many resamples of the images, paired across calls with
    the same number of images) and `ap_ci_low` / `ap_ci_high`, their 95 % percentile interval
    (`models.evaluation._bootstrap`, from the same evaluation).
    """
    from pycocotools.cocoeval import COCOeval

    from mixaq.models.evaluation._bootstrap import bootstrap_samples, percentile_interval

    if len(detections) == 0:
        # loadRes rejects an empty result list; no detections means zero precision everywhere
        # a size range has ground truth.
        out = {name: 0.0 for name in STAT_NAMES}
        return {**out, "ap_ci_low": 0.0, "ap_ci_high": 0.0, "ap_boot": (0.0,) * bootstrap} if bootstrap else out
    with contextlib.redirect_stdout(io.StringIO()):
        if iou_type == "segm":
            results = [{"image_id": int(r[0]), "category_id": int(r[6]), "score": float(r[5]), "segmentation": s}
                       for r, s in zip(detections, segmentations)]
            dt = dataset.coco.loadRes(results)
        else:
            dt = dataset.coco.loadRes(detections)
        ev = COCOeval(dataset.coco, dt, iouType=iou_type)
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
