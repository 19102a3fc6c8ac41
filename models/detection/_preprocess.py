"""mmdetection's test-time image pipeline, bit for bit: cv2 decode, keep-ratio rescale, normalize, pad.

The rescale is OpenCV's bilinear resize on the uint8 image (what `mmcv.imrescale` does) to
`int(edge * factor + 0.5)`; a torch bilinear resize, even rounded back to uint8, changes a third of
the detections of a test model. Decoding and resizing run on the CPU (in data-loader workers);
`normalize_pad` runs on the model's device: subtraction and division are exactly rounded there too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mixaq.core._errors import MixaqError

__all__ = ["PreparedImage", "read_bgr", "rescale_size", "prepare_bgr", "normalize_pad"]


@dataclass(frozen=True)
class PreparedImage:
    """One resized image and what maps detections back to the original pixels."""

    image: torch.Tensor  # (3, h, w) uint8, BGR as decoded (the model flips to RGB when normalizing)
    ori_hw: tuple[int, int]  # decoded image (H, W)
    scale_factor: tuple[float, float]  # (w_scale, h_scale) = (w / W, h / H), mmdet's definition

    @property
    def img_hw(self) -> tuple[int, int]:
        return (int(self.image.shape[1]), int(self.image.shape[2]))


def read_bgr(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR, decoded as mmcv.imfrombytes(flag='color') does (EXIF orientation applied)."""
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise MixaqError(f"cannot read image {path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MixaqError(f"cannot read image {path}: not a decodable image")
    return image


def rescale_size(hw: tuple[int, int], scale: Sequence[int]) -> tuple[int, int]:
    """mmcv.rescale_size with a (long, short) edge limit: the new (h, w), rounding half up."""
    h, w = hw
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * float(factor) + 0.5), int(w * float(factor) + 0.5)


def prepare_bgr(image: np.ndarray, scale: Sequence[int]) -> PreparedImage:
    """Keep-ratio rescale of a BGR uint8 image with OpenCV's bilinear resize (mmcv.imrescale)."""
    import cv2

    H, W = image.shape[:2]
    new_h, new_w = rescale_size((H, W), scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    tensor = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))  # (3, h, w)
    return PreparedImage(tensor, (H, W), (new_w / W, new_h / H))


def normalize_pad(image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, divisor: int) -> torch.Tensor:
    """(3, h, w) uint8 BGR -> (1, 3, Hp, Wp) float RGB, (x - mean) / std, zero-padded to `divisor`.

    `mean`, `std`: (3, 1, 1) float32 on the image's device (mmengine's ImgDataPreprocessor order).
    """
    x = image[[2, 1, 0], ...].float()
    x = (x - mean) / std
    h, w = x.shape[-2:]
    pad_h = int(np.ceil(h / divisor)) * divisor - h
    pad_w = int(np.ceil(w / divisor)) * divisor - w
    return F.pad(x, (0, pad_w, 0, pad_h), "constant", 0.0)[None]
