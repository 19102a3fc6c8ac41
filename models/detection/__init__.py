"""Detection on COCO-format data: synthetic shapes, Swin+FPN detectors, CPU training, fake-quant mAP.

Public names load lazily (pycocotools, torchvision and the detector only when first used).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CocoDetection",
    "DetectorConfig",
    "EvalResult",
    "Evaluator",
    "SYNTH_CLASSES",
    "SyntheticStream",
    "build_detector",
    "ensure_default_val",
    "load_backbone_weights",
    "load_detector",
    "render_sample",
    "save_checkpoint",
    "train",
    "load_run_config",
    "write_synthetic",
]

_WHERE = {
    "CocoDetection": "_coco",
    "SyntheticStream": "_coco",
    "DetectorConfig": "_detector",
    "build_detector": "_detector",
    "EvalResult": "_evaluate",
    "Evaluator": "_evaluate",
    "ensure_default_val": "_evaluate",
    "load_backbone_weights": "_checkpoint",
    "load_detector": "_checkpoint",
    "save_checkpoint": "_checkpoint",
    "SYNTH_CLASSES": "_synth",
    "render_sample": "_synth",
    "write_synthetic": "_synth",
    "train": "_train",
    "load_run_config": "_train",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mixaq.models.detection' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mixaq.models.detection.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
