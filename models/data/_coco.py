"""COCO-format detection data: a validated on-disk dataset and an on-the-fly synthetic stream.

Both yield `(image, target)` with `image` a float tensor (3, H, W) in [0, 1] and `target` holding
`boxes` (K, 4) xyxy pixels, `labels` (K,) contiguous class indices 0..C-1 and `image_id`.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mixaq.core._errors import MixaqError
from mixaq.models.data._synth import _ANN_NAME, _IMG_DIR, renderer, synth_categories

__all__ = ["CocoDetection", "SyntheticStream", "resolve_data", "collate", "image_to_tensor"]


def image_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float().div_(255.0)


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MixaqError(f"{path}: not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(data, dict):
        raise MixaqError(f"{path}: a COCO instances file must be a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise MixaqError(f"{path}: missing or invalid COCO field {key!r} (expected a list)")
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise MixaqError(f"{path}: images[{i}] needs 'id' and 'file_name'")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "category_id", "bbox"} <= set(ann):
            raise MixaqError(f"{path}: annotations[{i}] needs 'image_id', 'category_id' and 'bbox'")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise MixaqError(f"{path}: annotations[{i}].bbox must be 4 numbers [x, y, w, h]")
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat:
            raise MixaqError(f"{path}: categories[{i}] needs 'id'")
    if not data["categories"]:
        raise MixaqError(f"{path}: no categories")
    if not data["images"]:
        raise MixaqError(f"{path}: no images")
    if not data["annotations"]:
        raise MixaqError(f"{path}: no annotations (COCO AP is undefined without ground truth)")
    _check_ids(path, data)
    _check_boxes(path, data)
    return data


def _check_ids(path: Path, data: dict) -> None:
    for field in ("images", "categories", "annotations"):
        ids = [item.get("id") for item in data[field] if field != "annotations" or "id" in item]
        seen: set = set()
        dup = next((i for i in ids if i in seen or seen.add(i)), None)
        if dup is not None:
            raise MixaqError(f"{path}: duplicate {field[:-1]} id {dup!r}")


# COCO boxes may overhang the image by rounding; more than this (pixels) is a broken annotation.
_BOX_SLACK_PX = 1.0


def _check_boxes(path: Path, data: dict) -> None:
    """Boxes must have finite coordinates, positive width and height, and lie inside their image
    (when the image entry gives its size). Vectorized: real COCO has ~10^5-10^6 annotations."""
    anns = data["annotations"]
    boxes = np.asarray([a["bbox"] for a in anns], dtype=np.float64)  # (A, 4) x, y, w, h
    bad = ~np.isfinite(boxes).all(axis=1)
    reason = np.where(bad, "non-finite coordinates", "")
    small = ~bad & ((boxes[:, 2] <= 0) | (boxes[:, 3] <= 0))
    reason = np.where(small, "non-positive width or height", reason)
    bad |= small
    size = {img["id"]: (img.get("width"), img.get("height")) for img in data["images"]}
    wh = np.asarray([[np.nan if not isinstance(v, (int, float)) else v for v in size.get(a["image_id"], (None, None))]
                     for a in anns], dtype=np.float64)  # (A, 2); NaN where the image gives no size
    with np.errstate(invalid="ignore"):
        outside = ~bad & ((boxes[:, 0] < -_BOX_SLACK_PX) | (boxes[:, 1] < -_BOX_SLACK_PX)
                          | (boxes[:, 0] + boxes[:, 2] > wh[:, 0] + _BOX_SLACK_PX)
                          | (boxes[:, 1] + boxes[:, 3] > wh[:, 1] + _BOX_SLACK_PX))
    reason = np.where(outside, "outside its image", reason)
    bad |= outside
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        ann = anns[i]
        raise MixaqError(f"{path}: annotations[{i}] (id {ann.get('id')}, image {ann['image_id']}) has a bad box "
                         f"{ann['bbox']}: {reason[i]}" + (f" ({int(bad.sum())} bad boxes in all)" if bad.sum() > 1 else ""))


class CocoDetection(Dataset):
    """Images directory + COCO instances json, validated up front (one-line errors, no tracebacks).

    `category_ids[i]` is the COCO id of contiguous class `i`; crowd boxes are left out of training
    targets (COCOeval still sees them through `coco`).
    """

    def __init__(self, images_dir: str | Path, ann_file: str | Path, *, check_images: bool = True) -> None:
        from pycocotools.coco import COCO

        self.images_dir = Path(images_dir)
        self.ann_file = Path(ann_file)
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"image directory not found: {self.images_dir}")
        data = _load_json(self.ann_file)
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            try:
                self.coco.createIndex()
            except (KeyError, TypeError) as exc:
                raise MixaqError(f"{self.ann_file}: inconsistent COCO index ({exc})") from None
        self.category_ids = sorted(int(c["id"]) for c in data["categories"])
        self.category_names = [self.coco.cats[c].get("name", str(c)) for c in self.category_ids]
        self._label_of = {cid: i for i, cid in enumerate(self.category_ids)}
        self.image_ids = sorted(self.coco.imgs)
        for ann in data["annotations"]:
            if ann["category_id"] not in self._label_of:
                raise MixaqError(f"{self.ann_file}: annotation {ann.get('id')} has unknown "
                                 f"category_id {ann['category_id']}")
            if ann["image_id"] not in self.coco.imgs:
                raise MixaqError(f"{self.ann_file}: annotation {ann.get('id')} has unknown image_id {ann['image_id']}")
        if check_images:
            for image_id in self.image_ids:
                path = self.images_dir / self.coco.imgs[image_id]["file_name"]
                if not path.is_file():
                    raise FileNotFoundError(f"image {image_id} not found: {path}")

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def fingerprint(self, *id_groups: Sequence[int]) -> str:
        """sha1 (16 hex digits) of what these images are, by content: the annotation file's bytes, and
        per group (e.g. evaluated, calibration) the sorted image ids and every image file's size.
        Other boxes, another split or other image files give another fingerprint; paths do not matter."""
        digest = hashlib.sha1()
        with self.ann_file.open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha1").digest())
        for group in id_groups:
            ids = sorted(int(i) for i in group)
            sizes = [(self.images_dir / self.coco.imgs[i]["file_name"]).stat().st_size for i in ids]
            digest.update(json.dumps([ids, sizes]).encode())
        return digest.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.image_ids)

    def image_path(self, image_id: int) -> Path:
        return self.images_dir / self.coco.imgs[image_id]["file_name"]

    @property
    def has_segmentation(self) -> bool:
        """Every annotation has a `segmentation` (what COCOeval's segm metric needs)."""
        anns = self.coco.dataset["annotations"]
        return bool(anns) and all("segmentation" in a for a in anns)

    def load_image(self, image_id: int) -> torch.Tensor:
        path = self.image_path(image_id)
        if not path.is_file():
            raise FileNotFoundError(f"image {image_id} not found: {path}")
        try:
            with Image.open(path) as im:
                array = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise MixaqError(f"cannot read image {path}: {exc}") from None
        return image_to_tensor(array)

    def target(self, image_id: int) -> dict[str, torch.Tensor]:
        anns = [a for a in self.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        boxes = np.asarray([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        labels = np.asarray([self._label_of[a["category_id"]] for a in anns], dtype=np.int64)
        return {
            "boxes": torch.from_numpy(boxes[keep]),
            "labels": torch.from_numpy(labels[keep]),
            "image_id": torch.tensor(image_id),
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image_id = self.image_ids[index]
        return self.load_image(image_id), self.target(image_id)


class SyntheticStream(Dataset):
    """A synthetic dataset rendered in memory on demand: item `i` is image `i` of `generator` with `seed`.

    Training on a long stream instead of a few hundred fixed images keeps a small detector from
    overfitting; the pixels match what `mixaq data synth` writes (before JPEG encoding).
    """

    def __init__(self, seed: int, num_images: int, image_hw: tuple[int, int] = (256, 256), *,
                 generator: str = "shapes") -> None:
        self.seed, self.num_images, self.image_hw = int(seed), int(num_images), tuple(image_hw)
        self.generator = generator
        self._render = renderer(generator)
        cats = synth_categories()
        self.category_ids = [c["id"] for c in cats]
        self.category_names = [c["name"] for c in cats]

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sample = self._render(self.seed, index, self.image_hw)
        boxes = sample.boxes_xywh.copy()
        boxes[:, 2:] += boxes[:, :2]
        return image_to_tensor(sample.image), {
            "boxes": torch.from_numpy(boxes),
            "labels": torch.from_numpy(sample.labels),
            "image_id": torch.tensor(index + 1),
        }


def resolve_data(data: str | Path | None = None, *, images: str | Path | None = None,
                 ann: str | Path | None = None) -> CocoDetection:
    """A COCO dataset from a synthetic-layout dir (`DIR/images`, `DIR/annotations.json`) or explicit paths."""
    if images is not None or ann is not None:
        if images is None or ann is None:
            raise MixaqError("give both the image directory (--coco-root) and the instances json (--ann)")
        return CocoDetection(images, ann)
    if data is None:
        raise MixaqError("no dataset given")
    root = Path(data)
    if not root.exists():
        raise FileNotFoundError(f"dataset directory not found: {root}")
    return CocoDetection(root / _IMG_DIR, root / _ANN_NAME)


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch)
    return list(images), list(targets)
