"""Detector families: Swin+FPN and official / mmdet Swin (Cascade) Mask R-CNN computed as mmdetection
computes them, their configs, checkpoint import and our checkpoints, preprocessing (what a detector *is*).

Data (`models.data`) and evaluation/training (`models.evaluation`) are their own packages; their public
names stay importable from here too. Public names load on first use (`core._util.lazy_exports`):
pycocotools, torchvision and the detector only when needed.
"""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "CocoDetection": "mixaq.models.data._coco",
    "SyntheticStream": "mixaq.models.data._coco",
    "DetectorConfig": "._detector",
    "build_detector": "._detector",
    "DEFAULT_VAL": "mixaq.models.evaluation._evaluate",
    "EvalResult": "mixaq.models.evaluation._evaluate",
    "Evaluator": "mixaq.models.evaluation._evaluate",
    "ensure_default_val": "mixaq.models.evaluation._evaluate",
    "load_backbone_weights": "._checkpoint",
    "load_detector": "._checkpoint",
    "save_checkpoint": "._checkpoint",
    "GENERATORS": "mixaq.models.data._synth",
    "SYNTH_CLASSES": "mixaq.models.data._synth",
    "render_sample": "mixaq.models.data._synth",
    "write_synthetic": "mixaq.models.data._synth",
    "train": "mixaq.models.evaluation._train",
    "load_run_config": "mixaq.models.evaluation._train",
    "FAMILIES": "._registry",
    "get_family": "._registry",
    "RCNNConfig": "._rcnn_config",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
