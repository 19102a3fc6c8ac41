"""Object and background crops of a synthetic generator, for backbone pretraining by classification.

Item `i` holds every annotated object of image `i` (class 0..C-1) and a few background squares that
no object box covers much (class C), each cut as a square with random context around it and resized
to `crop_px` (torchvision `roi_align`, one call per image). Deterministic: a pure function of
`(seed, i)`, like the images themselves.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from mixaq.models.data._coco import image_to_tensor
from mixaq.models.data._synth import SYNTH_CLASSES, renderer

__all__ = ["ObjectCrops", "collate_crops"]

_CROP_SALT = 0xC409
# Crop side = object's longer box side x this (the object plus context), drawn per crop.
_CONTEXT = (1.15, 1.6)
# Background squares: sides like the objects'; at most this share of a square may lie in object boxes.
_BG_SIDE_PX = (16, 130)
_BG_MAX_COVER = 0.1
_BG_CANDIDATES = 24


def _coverage(squares: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(S,) share of each xyxy square covered by the union-free sum of its overlaps with xyxy boxes."""
    if len(boxes) == 0:
        return np.zeros(len(squares))
    ix = np.clip(np.minimum(squares[:, None, 2], boxes[None, :, 2]) - np.maximum(squares[:, None, 0], boxes[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(squares[:, None, 3], boxes[None, :, 3]) - np.maximum(squares[:, None, 1], boxes[None, :, 1]), 0, None)
    area = (squares[:, 2] - squares[:, 0]) * (squares[:, 3] - squares[:, 1])
    return (ix * iy).sum(1) / area


class ObjectCrops(Dataset):
    """Crops of image `i` of `generator` with `seed`: `((K, 3, P, P) float in [0, 1], (K,) labels)`."""

    def __init__(self, seed: int, num_images: int, image_hw: tuple[int, int] = (256, 256), *,
                 generator: str = "scenes", crop_px: int = 64, background_crops: int = 4) -> None:
        self.seed, self.num_images, self.image_hw = int(seed), int(num_images), tuple(image_hw)
        self.generator, self.crop_px, self.background_crops = generator, int(crop_px), int(background_crops)
        self._render = renderer(generator)

    @property
    def num_classes(self) -> int:
        """The object classes plus one background class (the last index)."""
        return len(SYNTH_CLASSES) + 1

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.ops import roi_align

        sample = self._render(self.seed, index, self.image_hw)
        rng = np.random.default_rng([self.seed, int(index), _CROP_SALT])
        h, w = self.image_hw
        boxes = sample.boxes_xywh.astype(np.float64).copy()
        boxes[:, 2:] += boxes[:, :2]  # xyxy
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        side = np.max(boxes[:, 2:] - boxes[:, :2], axis=1) * rng.uniform(*_CONTEXT, len(boxes))
        centre = centre + rng.uniform(-0.1, 0.1, centre.shape) * side[:, None]  # the object off-centre a little
        objects = np.concatenate([centre - side[:, None] / 2, centre + side[:, None] / 2], 1)
        cand_side = np.exp(rng.uniform(np.log(_BG_SIDE_PX[0]), np.log(_BG_SIDE_PX[1]), _BG_CANDIDATES))
        cand_side = np.minimum(cand_side, min(h, w))
        x0 = rng.uniform(0, 1, _BG_CANDIDATES) * (w - cand_side)
        y0 = rng.uniform(0, 1, _BG_CANDIDATES) * (h - cand_side)
        cands = np.stack([x0, y0, x0 + cand_side, y0 + cand_side], 1)
        background = cands[_coverage(cands, boxes) <= _BG_MAX_COVER][: self.background_crops]
        squares = torch.from_numpy(np.concatenate([objects, background]).astype(np.float32))
        labels = torch.from_numpy(np.concatenate([sample.labels, np.full(len(background), len(SYNTH_CLASSES))]))
        crops = roi_align(image_to_tensor(sample.image)[None], [squares], output_size=self.crop_px,
                          spatial_scale=1.0, sampling_ratio=2, aligned=True)  # (K, 3, P, P)
        flip = torch.from_numpy(rng.random(len(crops)) < 0.5)
        crops[flip] = crops[flip].flip(-1)  # shapes keep their class under a mirror
        return crops, labels.long()


def collate_crops(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    crops, labels = zip(*batch)
    return torch.cat(crops), torch.cat(labels)
