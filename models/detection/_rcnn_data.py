"""The train pipeline of the Swin Mask R-CNN / Cascade Mask R-CNN configs on a COCO instances file.

What mmdetection's `CocoDataset` + train pipeline do, in its order: images with no annotation of a
known category or a side under 32 px are skipped (`filter_empty_gt`, `min_size`); annotations with
`ignore`, zero area or a side under 1 px are dropped; crowd annotations are not ground truth (mmdet
keeps them as ignored instances, which `ignore_iof_thr` -1 never uses). Masks are bitmaps decoded
from the polygons / RLE (`poly2mask`). Then, as the official release's 3x configs (and mmdet 3.3's
`mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco`): a horizontal flip with probability 0.5, then one of two
policies with equal probability (AutoAugment / RandomChoice):

1. a keep-ratio resize to a scale drawn from `scales` (short edge 480..800 step 32, long <= 1333);
2. a keep-ratio resize to one of `crop_scales` (short 400 / 500 / 600), a random crop of h x w with
   each side drawn in [min(side, 384), min(side, 600)] (`absolute_range`) at a uniform offset,
   boxes translated and clipped, instances outside the crop dropped (a crop with none left is kept:
   `allow_negative_crop`), masks cropped; then a keep-ratio resize to one of `scales`.

Resizes: OpenCV bilinear for the image, nearest for the masks, boxes scaled and clipped.
`draw_augment` makes every random choice of one item; `apply_augment` applies them (a pure function,
compared with mmdet's transforms on the same choices in tests/test_rcnn_train_fidelity.py).

Randomness is per stream position, not per process: item `p` is image `p % n` with its choices
drawn from `(seed, p)`, so a resumed run, or a rank of a distributed run, sees exactly the
augmentation an uninterrupted single process would (the dataset is `repeats` passes long).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mixaq.core._errors import MixaqError
from mixaq.models.detection._preprocess import read_bgr, rescale_size
from mixaq.models.detection._rcnn_loss import TrainBatch, TrainTarget, pad_batch

__all__ = ["Augment", "CROP_SCALES", "CROP_SIZE", "OFFICIAL_SCALES", "RCNNTrainData", "apply_augment",
           "collate_rcnn", "draw_augment"]

# The official release's multi-scale training: short edge 480..800 step 32, long edge <= 1333.
OFFICIAL_SCALES: tuple[tuple[int, int], ...] = tuple((1333, s) for s in range(480, 801, 32))
# Its crop policy: resize to one of these, crop each side to [384, 600] px, resize to OFFICIAL_SCALES.
CROP_SCALES: tuple[tuple[int, int], ...] = ((1333, 400), (1333, 500), (1333, 600))
CROP_SIZE: tuple[int, int] = (384, 600)


@dataclass(frozen=True)
class Augment:
    """Every random choice of one training item, in mmdet's order: flip (of the decoded image), then
    the crop policy's first resize, crop size (h, w) and offset (top, left), or none of them (the
    resize-only policy), then the final keep-ratio resize `scale` (long, short)."""

    flip: bool
    scale: tuple[int, int]
    crop_scale: tuple[int, int] | None = None
    crop_hw: tuple[int, int] | None = None
    crop_offset: tuple[int, int] | None = None


def draw_augment(rng: np.random.Generator, image_hw: tuple[int, int], scales: Sequence[tuple[int, int]],
                 flip_prob: float = 0.5, crop_scales: Sequence[tuple[int, int]] | None = CROP_SCALES,
                 crop_size: tuple[int, int] = CROP_SIZE) -> Augment:
    """The choices for an image of `image_hw` (h, w); `crop_scales` None: the resize-only policy always."""
    flip = bool(rng.random() < flip_prob)
    if not crop_scales or rng.random() < 0.5:
        return Augment(flip, tuple(scales[int(rng.integers(len(scales)))]))
    first = tuple(crop_scales[int(rng.integers(len(crop_scales)))])
    h, w = rescale_size(image_hw, first)
    lo, hi = crop_size
    crop_h = int(rng.integers(min(h, lo), min(h, hi) + 1))
    crop_w = int(rng.integers(min(w, lo), min(w, hi) + 1))
    top, left = int(rng.integers(0, max(h - crop_h, 0) + 1)), int(rng.integers(0, max(w - crop_w, 0) + 1))
    return Augment(flip, tuple(scales[int(rng.integers(len(scales)))]), first, (crop_h, crop_w), (top, left))


def _resize(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray, scale: Sequence[int]):  # noqa: ANN202
    """mmdet's keep-ratio Resize: bilinear image, nearest masks, boxes scaled by the realised factors, clipped."""
    import cv2

    H, W = image.shape[:2]
    h, w = rescale_size((H, W), scale)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    # the masks as channels of one image: one OpenCV call per 512 instances (its channel limit)
    planes = [cv2.resize(np.ascontiguousarray(masks[i:i + 512].transpose(1, 2, 0)), (w, h),
                         interpolation=cv2.INTER_NEAREST).reshape(h, w, -1) for i in range(0, len(masks), 512)]
    masks = np.concatenate(planes, 2).transpose(2, 0, 1) if planes else np.zeros((0, h, w), np.uint8)
    boxes = boxes * np.array([w / W, h / H, w / W, h / H], np.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return image, boxes, masks


def apply_augment(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                  aug: Augment) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3), boxes (n, 4) xyxy float32, labels (n,), masks (n, H, W) uint8) -> the same after
    the flip, [resize, crop], resize of `aug`, as mmdet 3.3's transforms compute them."""
    if aug.flip:
        W = image.shape[1]
        image, masks = image[:, ::-1], masks[:, :, ::-1]
        boxes = np.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], 1).astype(np.float32)
    if aug.crop_scale is not None:
        image, boxes, masks = _resize(image, boxes, masks, aug.crop_scale)
        (top, left), (ch, cw) = aug.crop_offset, aug.crop_hw
        image = image[top:top + ch, left:left + cw]
        h, w = image.shape[:2]
        boxes = boxes - np.array([left, top, left, top], np.float32)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        # mmdet's HorizontalBoxes.is_inside on the clipped boxes: anything of the box left in the crop
        keep = (boxes[:, 0] < w) & (boxes[:, 1] < h) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        boxes, labels, masks = boxes[keep], labels[keep], masks[keep][:, top:top + ch, left:left + cw]
    image, boxes, masks = _resize(np.ascontiguousarray(image), boxes, np.ascontiguousarray(masks), aug.scale)
    return image, boxes, labels, masks


class RCNNTrainData(Dataset):
    """`(image (3, h, w) uint8 BGR, TrainTarget)` per stream position; `num_classes`, `categories`."""

    def __init__(self, images: str | Path, ann: str | Path, scales: Sequence[tuple[int, int]] = OFFICIAL_SCALES,
                 flip_prob: float = 0.5, seed: int = 0, repeats: int = 36, min_size: int = 32,
                 crop_scales: Sequence[tuple[int, int]] | None = CROP_SCALES,
                 crop_size: tuple[int, int] = CROP_SIZE) -> None:
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
        self.crop_scales = [tuple(int(v) for v in s) for s in crop_scales] if crop_scales else None
        lo, hi = (int(v) for v in crop_size)
        if not 0 < lo <= hi:
            raise MixaqError(f"crop size must be two edges 0 < min <= max, got {tuple(crop_size)}")
        self.crop_size = (lo, hi)
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
        image_id = self.ids[position % len(self.ids)]
        image = read_bgr(self.images_dir / self.coco.imgs[image_id]["file_name"])
        boxes, labels, masks = self._instances(image_id)
        if masks.shape[1:] != image.shape[:2]:
            raise MixaqError(f"image {image_id}: annotation size {masks.shape[1:]} differs from the file's {image.shape[:2]}")
        aug = draw_augment(np.random.default_rng([self.seed, position]), image.shape[:2], self.scales, self.flip_prob,
                           self.crop_scales, self.crop_size)
        image, boxes, labels, masks = apply_augment(image, boxes, labels, masks, aug)
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
