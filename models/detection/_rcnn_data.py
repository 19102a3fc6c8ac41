"""The train pipeline of the Swin Mask R-CNN / Cascade Mask R-CNN configs on a COCO instances file.

What mmdetection's `CocoDataset` + train pipeline do, in its order: images with no annotation of a
known category or a side under 32 px are skipped (`filter_empty_gt`, `min_size`); annotations with
`ignore`, zero area or a side under 1 px are dropped; crowd annotations are not ground truth (mmdet
keeps them as ignored instances, which `ignore_iof_thr` -1 never uses). Masks are bitmaps decoded
from the polygons / RLE (`poly2mask`). Then a horizontal flip with probability 0.5 and a keep-ratio
resize to a scale drawn from `scales` (the official release's multi-scale list by default; mmdet's
1x config is the single (1333, 800)): OpenCV bilinear for the image, nearest for the masks, boxes
scaled and clipped. Not done: the official release's crop branch (AutoAugment's second policy).

Randomness is per stream position, not per process: item `p` is image `p % n` with its flip and
scale drawn from `(seed, p)`, so a resumed run, or a rank of a distributed run, sees exactly the
augmentation an uninterrupted single process would (the dataset is `repeats` passes long).
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mixaq.core._errors import MixaqError
from mixaq.models.detection._preprocess import read_bgr, rescale_size
from mixaq.models.detection._rcnn_loss import TrainBatch, TrainTarget, pad_batch

__all__ = ["OFFICIAL_SCALES", "RCNNTrainData", "collate_rcnn"]

# The official release's multi-scale training: short edge 480..800 step 32, long edge <= 1333.
OFFICIAL_SCALES: tuple[tuple[int, int], ...] = tuple((1333, s) for s in range(480, 801, 32))


class RCNNTrainData(Dataset):
    """`(image (3, h, w) uint8 BGR, TrainTarget)` per stream position; `num_classes`, `categories`."""

    def __init__(self, images: str | Path, ann: str | Path, scales: Sequence[tuple[int, int]] = OFFICIAL_SCALES,
                 flip_prob: float = 0.5, seed: int = 0, repeats: int = 36, min_size: int = 32) -> None:
        from pycocotools.coco import COCO

        self.images_dir, ann = Path(images), Path(ann)
        if not ann.is_file():
            raise FileNotFoundError(f"annotation file not found: {ann}")
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"image directory not found: {self.images_dir}")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.coco = COCO(str(ann))
        except Exception as exc:  # pycocotools raises bare assertions / key errors on malformed files
            raise MixaqError(f"{ann}: not a COCO instances file ({type(exc).__name__}: {exc})") from None
        cats = sorted(self.coco.getCatIds())
        if not cats:
            raise MixaqError(f"{ann}: no categories")
        self.cat2label = {c: i for i, c in enumerate(cats)}
        self.categories = [self.coco.cats[c] for c in cats]
        anns = [a for a in self.coco.dataset.get("annotations", []) if a.get("category_id") in self.cat2label]
        lacking = [a for a in anns if not a.get("iscrowd", 0) and not a.get("segmentation")]
        if lacking:
            raise MixaqError(f"{ann}: annotation {lacking[0].get('id')} (and {len(lacking) - 1} more) has no "
                             "'segmentation': the Mask R-CNN families train on instance masks")
        with_ann = {a["image_id"] for a in anns}
        self.ids = [i for i in sorted(self.coco.imgs) if i in with_ann
                    and min(self.coco.imgs[i].get("width", 0), self.coco.imgs[i].get("height", 0)) >= min_size]
        if not self.ids:
            raise MixaqError(f"{ann}: no image with annotations of at least {min_size} px a side")
        self.scales = [tuple(int(v) for v in s) for s in scales]
        self.flip_prob, self.seed, self.repeats = float(flip_prob), int(seed), int(repeats)

    @property
    def num_classes(self) -> int:
        return len(self.cat2label)

    def __len__(self) -> int:
        return len(self.ids) * self.repeats

    def _instances(self, image_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        info = self.coco.imgs[image_id]
        boxes, labels, masks = [], [], []
        for a in self.coco.imgToAnns.get(image_id, []):
            if a.get("ignore", False) or a.get("iscrowd", 0) or a["category_id"] not in self.cat2label:
                continue
            x, y, w, h = a["bbox"]
            inter_w = max(0, min(x + w, info["width"]) - max(x, 0))
            inter_h = max(0, min(y + h, info["height"]) - max(y, 0))
            if inter_w * inter_h == 0 or a.get("area", 1) <= 0 or w < 1 or h < 1:
                continue
            boxes.append([x, y, x + w, y + h])
            labels.append(self.cat2label[a["category_id"]])
            masks.append(self.coco.annToMask(a))
        H, W = info["height"], info["width"]
        return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64),
                np.stack(masks) if masks else np.zeros((0, H, W), np.uint8))

    def __getitem__(self, position: int) -> tuple[torch.Tensor, TrainTarget]:
        import cv2

        image_id = self.ids[position % len(self.ids)]
        rng = np.random.default_rng([self.seed, position])
        flip = rng.random() < self.flip_prob
        scale = self.scales[int(rng.integers(len(self.scales)))]
        image = read_bgr(self.images_dir / self.coco.imgs[image_id]["file_name"])
        boxes, labels, masks = self._instances(image_id)
        if masks.shape[1:] != image.shape[:2]:
            raise MixaqError(f"image {image_id}: annotation size {masks.shape[1:]} differs from the file's {image.shape[:2]}")
        H, W = image.shape[:2]
        h, w = rescale_size((H, W), scale)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        masks = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in masks]) if len(masks) \
            else np.zeros((0, h, w), np.uint8)
        boxes = boxes * np.array([w / W, h / H, w / W, h / H], np.float32)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        if flip:
            image, masks = image[:, ::-1], masks[:, :, ::-1]
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return tensor, TrainTarget(torch.from_numpy(np.ascontiguousarray(boxes)), torch.from_numpy(labels),
                                   torch.from_numpy(np.ascontiguousarray(masks)))


def collate_rcnn(samples: Sequence[tuple[torch.Tensor, TrainTarget]], mean: Sequence[float], std: Sequence[float],
                 divisor: int = 32) -> TrainBatch:
    """BGR uint8 -> RGB, (x - mean) / std, padded to one batch (mmdet's DetDataPreprocessor)."""
    m = torch.tensor(list(mean), dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(3, 1, 1)
    images = [(im[[2, 1, 0]].float() - m) / s for im, _ in samples]
    return TrainBatch(pad_batch(images, divisor), tuple((int(im.shape[1]), int(im.shape[2])) for im, _ in samples),
                      tuple(t for _, t in samples))
