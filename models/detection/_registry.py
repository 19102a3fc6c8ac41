"""Detector families: the one registry of names, builders, label mapping and metrics.

Torch-free (builders and configs are dotted paths resolved on first use), so `--help` and argument
choices can list the families without importing torch.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from mixaq.core._errors import MixaqError

__all__ = ["DetectorFamily", "FAMILIES", "FAMILY_NAMES", "RCNN_FAMILIES", "TRAINABLE_FAMILIES", "get_family", "FCOS",
           "RETINANET", "FASTERRCNN", "MASK_RCNN", "CASCADE_MASK_RCNN"]


@dataclass(frozen=True)
class DetectorFamily:
    """One detector family.

    `label_offset`: the model's label of dataset class i is i + offset (torchvision's R-CNN keeps 0
    for background). `inputs`: "tensor" (float RGB in [0, 1]; the model resizes) or "mmdet" (a
    `PreparedImage` from mmdet's test pipeline, `_preprocess.py`). Foreign checkpoint formats
    (official releases, the mmdet zoo) are recognised by their content (`_import.py`).
    """

    name: str
    summary: str
    config: str  # "module:Class" of its config dataclass
    builder: str  # "module:function" (config) -> nn.Module
    label_offset: int = 0
    masks: bool = False
    inputs: str = "tensor"

    @property
    def iou_types(self) -> tuple[str, ...]:
        """COCOeval iouTypes this family is measured with."""
        return ("bbox", "segm") if self.masks else ("bbox",)

    @staticmethod
    def _resolve(path: str) -> Any:
        module, _, attr = path.partition(":")
        return getattr(importlib.import_module(module), attr)

    def config_class(self) -> type:
        return self._resolve(self.config)

    def build(self, config: Any) -> Any:
        """A randomly initialised model of this family (never pretrained weights)."""
        model = self._resolve(self.builder)(config)
        model.label_offset = self.label_offset
        return model


FCOS, RETINANET, FASTERRCNN, MASK_RCNN, CASCADE_MASK_RCNN = "fcos", "retinanet", "fasterrcnn", "mask_rcnn", "cascade_mask_rcnn"
_TV = "mixaq.models.detection._detector"
_RCNN = "mixaq.models.detection._rcnn_config:RCNNConfig"
FAMILIES: dict[str, DetectorFamily] = {f.name: f for f in (
    DetectorFamily(FCOS, "timm Swin + FPN + torchvision FCOS (the embedded default)",
                   f"{_TV}:DetectorConfig", f"{_TV}:build_torchvision"),
    DetectorFamily(RETINANET, "timm Swin + FPN + torchvision RetinaNet", f"{_TV}:DetectorConfig",
                   f"{_TV}:build_torchvision"),
    DetectorFamily(FASTERRCNN, "timm Swin + FPN + torchvision Faster R-CNN", f"{_TV}:DetectorConfig",
                   f"{_TV}:build_torchvision", label_offset=1),
    DetectorFamily(MASK_RCNN, "official Swin + FPN + Mask R-CNN, as mmdetection computes it", _RCNN,
                   "mixaq.models.detection._mask_rcnn:MaskRCNN", masks=True, inputs="mmdet"),
    DetectorFamily(CASCADE_MASK_RCNN, "official Swin + FPN + Cascade Mask R-CNN (3 stages), as mmdetection "
                   "computes it", _RCNN, "mixaq.models.detection._cascade:build_cascade_mask_rcnn", masks=True,
                   inputs="mmdet"),
)}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
RCNN_FAMILIES: tuple[str, ...] = tuple(n for n, f in FAMILIES.items() if f.inputs == "mmdet")
# Families `mixaq train` builds from scratch (torchvision's losses). `qat` and `adapt` also take the
# R-CNN families, whose training losses equal mmdetection's (`_rcnn_loss.py`).
TRAINABLE_FAMILIES: tuple[str, ...] = tuple(n for n, f in FAMILIES.items() if f.inputs == "tensor")


def get_family(name: str) -> DetectorFamily:
    if name not in FAMILIES:
        raise MixaqError(f"unknown detector family {name!r} (choose from {', '.join(FAMILY_NAMES)})")
    return FAMILIES[name]
