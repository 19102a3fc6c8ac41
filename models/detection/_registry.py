"""Detector families: the one registry of names, builders, weight importers, label mapping and metrics.

Torch-free (builders and configs are dotted paths resolved on first use), so `--help` and argument
choices can list the families without importing torch.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from mixaq.core._errors import MixaqError

__all__ = ["DetectorFamily", "FAMILIES", "FAMILY_NAMES", "RCNN_FAMILIES", "TRAINABLE_FAMILIES", "get_family"]


@dataclass(frozen=True)
class DetectorFamily:
    """One detector family.

    `label_offset`: the model's label of dataset class i is i + offset (torchvision's R-CNN keeps 0
    for background). `inputs`: "tensor" (float RGB in [0, 1]; the model resizes) or "mmdet" (a
    `PreparedImage` from mmdet's test pipeline, `_preprocess.py`). `importers`: foreign checkpoint
    formats it loads besides ours ("official": Swin-Transformer-Object-Detection, "mmdet3": the
    mmdet >= 2.16 / 3.x zoo).
    """

    name: str
    summary: str
    config: str  # "module:Class" of its config dataclass
    builder: str  # "module:function" (config) -> nn.Module
    label_offset: int = 0
    masks: bool = False
    inputs: str = "tensor"
    importers: tuple[str, ...] = ()

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


_TV = "mixaq.models.detection._detector"
_RCNN = "mixaq.models.detection._rcnn_config:RCNNConfig"
FAMILIES: dict[str, DetectorFamily] = {f.name: f for f in (
    DetectorFamily("fcos", "timm Swin + FPN + torchvision FCOS (the embedded default)",
                   f"{_TV}:DetectorConfig", f"{_TV}:build_torchvision"),
    DetectorFamily("retinanet", "timm Swin + FPN + torchvision RetinaNet", f"{_TV}:DetectorConfig",
                   f"{_TV}:build_torchvision"),
    DetectorFamily("fasterrcnn", "timm Swin + FPN + torchvision Faster R-CNN", f"{_TV}:DetectorConfig",
                   f"{_TV}:build_torchvision", label_offset=1),
    DetectorFamily("mask_rcnn", "official Swin + FPN + Mask R-CNN, as mmdetection computes it", _RCNN,
                   "mixaq.models.detection._mask_rcnn:MaskRCNN", masks=True, inputs="mmdet",
                   importers=("official", "mmdet3")),
    DetectorFamily("cascade_mask_rcnn", "official Swin + FPN + Cascade Mask R-CNN (3 stages), as mmdetection "
                   "computes it", _RCNN, "mixaq.models.detection._cascade:build_cascade_mask_rcnn", masks=True,
                   inputs="mmdet", importers=("official", "mmdet3")),
)}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
RCNN_FAMILIES: tuple[str, ...] = tuple(n for n, f in FAMILIES.items() if f.inputs == "mmdet")
# Families with training losses in mixaq (torchvision's): `mixaq train`, `qat` and `adapt` take these;
# the mmdet-equal R-CNN families are inference-only (PTQ eval and sweep).
TRAINABLE_FAMILIES: tuple[str, ...] = tuple(n for n, f in FAMILIES.items() if f.inputs == "tensor")


def get_family(name: str) -> DetectorFamily:
    if name not in FAMILIES:
        raise MixaqError(f"unknown detector family {name!r} (choose from {', '.join(FAMILY_NAMES)})")
    return FAMILIES[name]
